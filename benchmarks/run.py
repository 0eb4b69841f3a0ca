"""The benchmark: training, inference and video speed on this machine, against the canonical example.

    python -m benchmarks.run                      # everything; table on stdout, JSON to --json
    python -m benchmarks.run --only inference     # one part: training, inference, video
    python -m benchmarks.run --quick              # tiny sizes, 1 warm-up + 2 runs: CI's smoke test

Every figure is the median of --repeats runs after --warmup untimed ones. Training compares our
trainer in its default configuration (batch 4 and 8) with a faithful re-creation of the canonical
PyTorch example's step (batch 4) in the same run, so the ratio is the figure to quote. On a CUDA
machine the inference table covers fp16/bf16, channels-last, CUDA graphs, torch.compile, ONNX
Runtime CUDA and TensorRT; on a CPU, eager, ONNX Runtime and (with --compile) torch.compile.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from fast_nst.export import export_onnx

from . import inference, train_step

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FULL_SIZES = [(256, 256), (512, 512), (1024, 1024), (1080, 1920)]
QUICK_SIZES = [(64, 64), (72, 104)]
CLIPS = [SHARED / "video" / "chaplin.mp4", SHARED / "video" / "big_buck_bunny_0_30.webm"]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": _cpu_name(),
        "threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def training(args: argparse.Namespace) -> dict:
    size = 64 if args.quick else 256
    device = "auto"
    # On a GPU our defaults (bf16, channels-last, photos on the device) at the batches it is fed.
    batches = (4, 16, 64) if torch.cuda.is_available() else (4, 8)
    runs = {f"fast-nst, batch {b}": ("ours", b) for b in batches}
    runs["canonical example, batch 4"] = ("canonical", 4)
    results = {
        name: train_step.measure(side, size, batch, args.repeats, args.warmup, device, args.data, args.style)
        for name, (side, batch) in runs.items()
    }
    base = results["canonical example, batch 4"]["images_per_s"]
    print(f"\ntraining, {size} px crops, median s/step of {args.repeats} after {args.warmup} warm-up")
    columns = ("s/step", 9), ("images/s", 10), ("vs canonical", 14), ("GFLOP/img", 11), ("GFLOP/s", 9)
    print(f"{'':<28}" + "".join(f"{c:>{w}}" for c, w in columns) + f"{'peak MB':>9}")
    for name, r in results.items():
        side, batch = runs[name]
        r["gflop_per_image"] = train_step.step_flops(side, size, batch) / 1e9
        ratio, rate = r["images_per_s"] / base, r["images_per_s"] * r["gflop_per_image"]
        print(
            f"{name:<28}{r['median_s']:>9.3f}{r['images_per_s']:>10.2f}{ratio:>13.2f}x"
            f"{r['gflop_per_image']:>11.1f}{rate:>9.1f}{r['peak_mb']:>9.0f}"
        )
    return {"size": size, "results": results}


def inference_speed(args: argparse.Namespace, folder: Path) -> dict:
    sizes = QUICK_SIZES if args.quick else args.sizes or FULL_SIZES
    shapes = [(1, h, w) for h, w in sizes]
    if torch.cuda.is_available():  # a video server's batch of frames
        shapes.append((8, *sizes[-1]))
    model = inference.make_model(folder)
    onnx_model = export_onnx(model, folder / "bench.onnx").path
    light = export_onnx(inference.make_model(folder, width=16), folder / "bench-w16.onnx").path
    results = inference.measure_inference(
        model, onnx_model, light, shapes, args.warmup, args.repeats, args.compile
    )
    keys = [inference.shape_key(*shape) for shape in shapes]
    base = next(iter(results.values()))  # the canonical example comes first
    print(f"\ninference, ms per image (model only), median of {args.repeats} after {args.warmup} warm-up")
    print(f"{'':<44}" + "".join(f"{k:>11}" for k in keys) + "   speed-up at the largest")
    for name, row in results.items():
        if "error" in row:
            print(f"{name:<44}  not run: {row['error']}")
            continue
        cells = [f"{row[k] * 1000:>11.1f}" if isinstance(row[k], float) else f"{'failed':>11}" for k in keys]
        last, first = row[keys[-1]], base.get(keys[-1])
        ratio = f"{first / last:.2f}x" if isinstance(last, float) and isinstance(first, float) else ""
        print(f"{name:<44}" + "".join(cells) + f"   {ratio:>8}")
    flops = {f"{w}x{h}": inference.network_flops(h, w) for h, w in sizes}
    print("network GFLOP per image: " + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in flops.items()))
    light_flops = {f"{w}x{h}": inference.network_flops(h, w, width=16) for h, w in sizes}
    print("light model (width 16): " + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in light_flops.items()))
    return {"sizes": keys, "seconds": results, "flops": flops, "light_flops": light_flops}


def video(args: argparse.Namespace, folder: Path) -> dict:
    model = inference.make_model(folder)
    clips = [c for c in CLIPS if c.is_file()]
    if not torch.cuda.is_available():
        clips = clips[:1]  # 720 frames of 720p take ~10 minutes on a laptop CPU: chaplin only
    results = {}
    print("\nvideo, end to end (decode, stylise, encode, mux), default backend for this machine")
    for clip in clips:
        r = inference.measure_video(model, clip, folder, 16 if args.quick else None)
        results[clip.name] = r
        fps = r["frames_per_s"]
        print(f"{clip.name:<32}{r['frames']:>6} frames {r['seconds']:>8.1f} s {fps:>8.2f} frames/s")
    if not clips:
        print(f"skipped: no clips in {SHARED / 'video'}")
    return results


def _sizes(text: str) -> list[tuple[int, int]]:
    """'1920x1080,512x512' -> [(1080, 1920), (512, 512)]: (height, width) as FULL_SIZES."""
    return [(int(h), int(w)) for w, h in (size.split("x") for size in text.split(","))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="training,inference,video", help="comma-separated parts to run")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    p.add_argument("--compile", action="store_true", help="also time torch.compile on the CPU (slow build)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 warm-up + 2 runs: a smoke test")
    p.add_argument("--sizes", type=_sizes, help="inference sizes, e.g. 1920x1080,512x512", metavar="WxH,...")
    p.add_argument("--data", type=Path, default=train_step.DEFAULT_DATA, help="training photos")
    p.add_argument("--style", type=Path, default=train_step.DEFAULT_STYLE, help="the painting trained on")
    p.add_argument("--json", type=Path, default=Path("benchmark-results.json"), help="where the figures go")
    args = p.parse_args()
    if args.quick:
        args.repeats, args.warmup = 2, 1
    parts = {part.strip() for part in args.only.split(",")}
    unknown = parts - {"training", "inference", "video"}
    if unknown:
        p.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    report: dict = {"machine": machine(), "command": vars(args) | {"json": str(args.json)}}
    print(", ".join(f"{k} {v}" for k, v in report["machine"].items()))
    with tempfile.TemporaryDirectory(prefix="fast-nst-bench-") as tmp:
        if "training" in parts:
            report["training"] = training(args)
        if "inference" in parts:
            report["inference"] = inference_speed(args, Path(tmp))
        if "video" in parts:
            report["video"] = video(args, Path(tmp))
    args.json.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
