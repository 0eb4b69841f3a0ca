"""Inference speed: fast-nst (torch eager, ONNX Runtime) vs the canonical PyTorch example, one run.

    python -m benchmarks.inference            # 512x512 and 1920x1080, 2 warm-up + 5 timed runs
    python -m benchmarks.inference --quick    # tiny sizes, 1 warm-up + 2 runs, for CI

Networks have seeded random weights (speed does not depend on their values), width 32 like the
paper and the example. Ours goes through `Stylizer`, the path the CLI uses, on a (1, 3, H, W)
float tensor; the example's is its eager fp32 TransformerNet under `torch.no_grad` on 0-255 input.
The video figure is `fast-nst stylize` on chaplin.mp4 end to end (decode, stylise, encode, mux).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from fast_nst.export import export_onnx
from fast_nst.runtime import Stylizer
from fast_nst.transformer import TransformerNet, model_record
from fast_nst.video import stylize_video

from .canonical import CanonicalTransformerNet

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "chaplin.mp4"


def median_seconds(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="video for the end-to-end figure")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 timed runs, no video: for CI")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    sizes = [(64, 64), (96, 160)] if args.quick else [(512, 512), (1080, 1920)]
    if args.quick:
        args.repeats, args.warmup = 2, 1

    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp(prefix="fast-nst-bench-"))
    model = folder / "model.pt"
    torch.save(model_record(TransformerNet(width=32), {"style": "bench"}), model)
    onnx_model = export_onnx(model, folder / "model.onnx").path
    runners = {
        "torch eager (fast-nst)": Stylizer.load(model, device="cpu"),
        "onnxruntime CPU (fast-nst)": Stylizer.load(onnx_model, device="cpu"),
    }
    canonical = CanonicalTransformerNet().eval()

    results: dict[str, dict[str, float]] = {}
    for h, w in sizes:
        x = torch.rand(1, 3, h, w)
        key = f"{w}x{h}"
        for name, stylizer in runners.items():
            seconds = median_seconds(partial(stylizer, x), args.warmup, args.repeats)
            results.setdefault(name, {})[key] = seconds

        def run_canonical(x: torch.Tensor = x) -> torch.Tensor:
            with torch.no_grad():
                return canonical(x * 255).clamp(0, 255)

        results.setdefault("canonical example (eager)", {})[key] = median_seconds(
            run_canonical, args.warmup, args.repeats
        )

    print(f"inference, median of {args.repeats} after {args.warmup} warm-up, CPU, torch {torch.__version__}")
    print(f"{'':<28}" + "".join(f"{f'{w}x{h} s':>14}" for h, w in sizes))
    for name, row in results.items():
        print(f"{name:<28}" + "".join(f"{row[f'{w}x{h}']:>14.3f}" for h, w in sizes))
    base = results["canonical example (eager)"]
    for name in runners:
        ratios = ", ".join(f"{k}: {base[k] / v:.2f}x" for k, v in results[name].items())
        print(f"speed-up of {name} over the canonical example: {ratios}")

    video = None
    if not args.quick and args.video.is_file():
        stylizer = runners["onnxruntime CPU (fast-nst)"]
        start = time.perf_counter()
        report = stylize_video(stylizer, args.video, folder / "out.mp4")
        seconds = time.perf_counter() - start
        video = {"file": str(args.video), "frames": report.frames, "seconds": seconds}
        fps = report.frames / seconds
        print(f"video {args.video.name}: {report.frames} frames in {seconds:.1f} s = {fps:.2f} frames/s")
    if args.json:
        args.json.write_text(json.dumps({"seconds": results, "video": video}, indent=1))


if __name__ == "__main__":
    main()
