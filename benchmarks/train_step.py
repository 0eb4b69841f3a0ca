"""Training throughput: fast-nst's trainer vs the canonical PyTorch example's step.

Run through `python -m benchmarks.run`. Each side runs in its own process (so peak memory is its
own) over the same photos and painting.
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

    from fast_nst.device import pick_device
    from fast_nst.train import TrainConfig, train

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
    from fast_nst.device import pick_device
    from fast_nst.files import load_image_tensor

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


def step_flops(side: str, size: int, batch: int) -> float:
    """FLOPs per image of one training step (forward + backward), by torch's flop counter.

    Counted on a 64 px step and scaled to `size`: every layer is convolutional, so the cost is
    proportional to the pixels. The style targets, computed once per run, are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.canonical import CanonicalTrainer
    from fast_nst.config import CONTENT_LAYERS, STYLE_LAYERS
    from fast_nst.losses import PerceptualLoss
    from fast_nst.transformer import TransformerNet
    from fast_nst.vgg import VGG19Encoder

    torch.manual_seed(0)
    x, style = torch.rand(batch, 3, 64, 64), torch.rand(1, 3, 64, 64)
    counter = FlopCounterMode(display=False)
    if side == "canonical":
        trainer = CanonicalTrainer(style, batch, torch.device("cpu"))
        with counter:
            trainer.step(x * 255)
    else:
        encoder = VGG19Encoder([*STYLE_LAYERS, *CONTENT_LAYERS])
        weights = dict.fromkeys(STYLE_LAYERS, 1.0)
        loss = PerceptualLoss(encoder, [style], weights, CONTENT_LAYERS, 10.0, 1.0, 10.0)
        net = TransformerNet()  # the default width, 32
        with counter:
            loss(net(x), loss.content_targets(x)).total.backward()
    return counter.get_total_flops() / batch * (size / 64) ** 2


def measure(
    side: str, size: int, batch: int, steps: int, warmup: int, device: str, data: Path, style: Path
) -> dict:
    """One side's figures, measured in a fresh process so its peak memory is its own."""
    cmd = [sys.executable, "-m", "benchmarks.train_step", "--only", side, "--size", str(size)]
    cmd += ["--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup), "--device", device]
    cmd += ["--data", str(data), "--style", str(style)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["median_s"] = statistics.median(r["seconds"])
    r["images_per_s"] = batch / r["median_s"]
    return r


def main() -> None:
    """Child-process side of `measure`; `python -m benchmarks.run` is the entry point for people."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of training photos")
    p.add_argument("--style", type=Path, default=DEFAULT_STYLE, help="the painting")
    p.add_argument("--size", type=int, default=256, help="crop size")
    p.add_argument("--batch", type=int, default=4, help="batch size")
    p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--only", choices=["ours", "canonical"], required=True, help="which trainer")
    args = p.parse_args()
    print(json.dumps((run_ours if args.only == "ours" else run_canonical)(args)))


if __name__ == "__main__":
    main()
