"""Training throughput: fast-nst's trainer vs the canonical PyTorch example's step, in one run.

    python -m benchmarks.train_step                 # 256 px, batch 4, 2 warm-up + 5 timed steps
    python -m benchmarks.train_step --quick         # tiny sizes, for CI

Each side runs in its own process (so peak memory is its own) over the same photos and painting.
Ours is the real `fast_nst.train.train` loop in its default configuration, timed from its own
per-step log; the canonical step includes its in-process photo loading, as the example has no
loader workers. Reported: median seconds per step, images/s, peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "photos" / "train"
DEFAULT_STYLE = ROOT.parent / "shared" / "data" / "styles" / "mosaic.jpg"


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_ours(args: argparse.Namespace) -> dict:
    from rich.console import Console

    from fast_nst.train import TrainConfig, pick_device, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            style=str(args.style),
            data=str(args.data),
            out=f"{tmp}/m.pt",
            run_dir=tmp,
            steps=args.warmup + args.steps,
            batch_size=args.batch,
            image_size=args.size,
            log_every=1,
            preview_count=0,
            checkpoint_every=10**9,
            device=args.device,
        )
        train(cfg, console=Console(file=open("/dev/null", "w")))  # noqa: SIM115
        log = [json.loads(line) for line in Path(tmp, "log.jsonl").read_text().splitlines()]
    seconds = [args.batch / r["images_per_s"] for r in log[args.warmup :]]
    return {"seconds": seconds, "peak_mb": _peak_memory_mb(pick_device(args.device))}


def run_canonical(args: argparse.Namespace) -> dict:
    from benchmarks.canonical import CanonicalTrainer, load_batches
    from fast_nst.data import find_images
    from fast_nst.files import load_image_tensor
    from fast_nst.train import pick_device

    device = pick_device(args.device)
    torch.manual_seed(0)
    trainer = CanonicalTrainer(load_image_tensor(args.style), args.batch, device)
    batches = load_batches(find_images(args.data), args.batch, args.size)
    seconds = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        trainer.step(next(batches))  # .item() inside syncs, as in the example
        if i >= args.warmup:
            seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "peak_mb": _peak_memory_mb(device)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of training photos")
    p.add_argument("--style", type=Path, default=DEFAULT_STYLE, help="the painting")
    p.add_argument("--size", type=int, default=256, help="crop size")
    p.add_argument("--batch", type=int, default=4, help="batch size")
    p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--quick", action="store_true", help="64 px, 2 timed steps: a smoke test for CI")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--only", choices=["ours", "canonical"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.size, args.steps, args.warmup = 64, 2, 1
    if args.only:  # child process: one side, JSON on stdout
        print(json.dumps((run_ours if args.only == "ours" else run_canonical)(args)))
        return

    results = {}
    for side in ("ours", "canonical"):
        cmd = [sys.executable, "-m", "benchmarks.train_step", *sys.argv[1:], "--only", side]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        r["median_s"] = statistics.median(r["seconds"])
        r["images_per_s"] = args.batch / r["median_s"]
        results[side] = r
    ratio = results["ours"]["images_per_s"] / results["canonical"]["images_per_s"]
    print(
        f"training step, {args.size} px, batch {args.batch}, device {args.device}, torch {torch.__version__}"
    )
    print(f"{'':<10} {'s/step':>8} {'images/s':>9} {'peak MB':>8}")
    for side, r in results.items():
        print(f"{side:<10} {r['median_s']:>8.3f} {r['images_per_s']:>9.2f} {r['peak_mb']:>8.0f}")
    print(f"ratio (ours / canonical images/s): {ratio:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "config": vars(args)
                    | {"data": str(args.data), "style": str(args.style), "json": str(args.json)},
                    "results": results,
                    "ratio": ratio,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
