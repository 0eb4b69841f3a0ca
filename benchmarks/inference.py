"""Inference speed: every way fast-nst can run a network, and the canonical PyTorch example's eager.

Networks have seeded random weights (speed does not depend on their values), width 32 like the
paper and the example. Each variant runs on a (1, 3, H, W) float input already on its device and
is timed to a finished result (CUDA synchronised), so these are model-only figures; the video
figure is end to end (decode, stylise, encode, mux) through `fast_nst.video`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import torch

from fast_nst.runtime import Stylizer
from fast_nst.transformer import TransformerNet, model_record

from .canonical import CanonicalTransformerNet

Runner = Callable[[torch.Tensor], object]


def median_seconds(fn: Callable[[], object], warmup: int, repeats: int, cuda: bool = False) -> float:
    def timed() -> float:
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(warmup):
        timed()
    return statistics.median(timed() for _ in range(repeats))


K = TypeVar("K")


def interleaved_seconds(
    runners: dict[K, Callable[[], object]], warmup: int, rounds: int
) -> dict[K, list[float]]:
    """Seconds of each runner per round; each round runs every runner once, in turn, so a busy
    moment of the machine hits all of them alike (side by side in one run). The first `warmup`
    rounds are not kept."""
    seconds: dict[K, list[float]] = {name: [] for name in runners}
    for round_ in range(warmup + rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            if round_ >= warmup:
                seconds[name].append(time.perf_counter() - start)
    return seconds


def network_flops(h: int, w: int, width: int = 32) -> float:
    """FLOPs of one forward pass at h x w (counted at 64 x 64; the cost is proportional to pixels)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        TransformerNet(width=width)(torch.rand(1, 3, 64, 64))
    return counter.get_total_flops() * h * w / 64**2


def make_model(folder: Path, width: int = 32) -> Path:
    torch.manual_seed(0)
    path = folder / f"bench-w{width}.pt"
    torch.save(model_record(TransformerNet(width=width), {"style": "bench"}), path)
    return path


def _cuda_graph(stylizer: Stylizer, shape: tuple[int, ...]) -> Runner:
    """The fp16 network captured once as a CUDA graph for one input shape, replayed per call."""
    backend = stylizer.backend
    static = torch.zeros(shape, device="cuda", dtype=torch.float16).contiguous(
        memory_format=torch.channels_last
    )
    with torch.inference_mode():
        for _ in range(3):  # warm up cuDNN's algorithm choice outside the capture
            backend.net(static)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = backend.net(static)

    def run(x: torch.Tensor) -> torch.Tensor:
        static.copy_(x)
        graph.replay()
        return out

    return run


def _cuda_graphs(model: Path) -> Runner:
    """One CUDA graph per input shape, captured on first sight of the shape."""
    stylizer = Stylizer.load(model, device="cuda", precision="fp16")
    graphs: dict[tuple[int, ...], Runner] = {}

    def run(x: torch.Tensor) -> torch.Tensor:
        if x.shape not in graphs:
            graphs[x.shape] = _cuda_graph(stylizer, tuple(x.shape))
        return graphs[x.shape](x)

    return run


def variants(
    model: Path, onnx_model: Path, light_onnx: Path, cuda: bool, compile: bool
) -> dict[str, Callable[[], Runner]]:
    """Name -> a factory for a runner; factories, so a variant that cannot run here fails alone.

    `light_onnx` is the width-16 network (`fast-nst train --width 16`), the CPU user's option.
    """

    def torch_on(device: str, **kw: object) -> Callable[[], Runner]:
        def factory() -> Runner:
            backend = Stylizer.load(model, device=device, backend="torch", **kw).backend
            fmt = backend.memory_format
            return lambda x: backend.forward(x.to(backend.dtype).contiguous(memory_format=fmt))

        return factory

    def ort(device: str, path: Path = onnx_model, **kw: object) -> Callable[[], Runner]:
        return lambda: Stylizer.load(path, device=device, **kw).backend

    def canonical(device: str) -> Callable[[], Runner]:
        def factory() -> Runner:
            net = CanonicalTransformerNet().to(device).eval()
            return lambda x: net(x * 255).clamp(0, 255)

        return factory

    table = {
        "canonical example, eager fp32": canonical("cpu"),
        "torch eager fp32": torch_on("cpu", channels_last=False),
        "onnxruntime CPU (default on CPU)": ort("cpu"),
        "onnxruntime CPU, light model (--width 16)": ort("cpu", light_onnx),
    }
    if compile:
        table["torch.compile fp32"] = torch_on("cpu", compile=True, channels_last=False)
    if cuda:
        table = {
            "canonical example, eager fp32 (CUDA)": canonical("cuda"),
            "torch eager fp32": torch_on("cuda", channels_last=False),
            "torch eager fp32 channels-last": torch_on("cuda"),
            "torch eager bf16 channels-last": torch_on("cuda", precision="bf16"),
            "torch eager fp16 channels-last (default on CUDA: --precision fp16)": torch_on(
                "cuda", precision="fp16"
            ),
            "torch.compile fp16 channels-last": torch_on("cuda", precision="fp16", compile=True),
            "CUDA graph fp16 channels-last": lambda: _cuda_graphs(model),
            "onnxruntime CUDA/TensorRT fp32": ort("cuda"),
            "onnxruntime TensorRT fp16": ort("cuda", precision="fp16"),
            "onnxruntime TensorRT fp16, light model (--width 16)": ort("cuda", light_onnx, precision="fp16"),
        }
    return table


def shape_key(batch: int, h: int, w: int) -> str:
    return f"{w}x{h}" if batch == 1 else f"{w}x{h} b{batch}"


def measure_inference(
    model: Path,
    onnx_model: Path,
    light_onnx: Path,
    shapes: list[tuple[int, int, int]],
    warmup: int,
    repeats: int,
    compile: bool,
) -> dict[str, dict[str, float | str]]:
    """Median seconds per image for each variant and (batch, height, width), keyed by `shape_key`;
    an error string where it failed."""
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    results: dict[str, dict[str, float | str]] = {}
    for name, factory in variants(model, onnx_model, light_onnx, cuda, compile).items():
        row = results.setdefault(name, {})
        try:
            runner = factory()
        except Exception as e:  # a missing provider or compiler is a finding, not a crash
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            continue
        for b, h, w in shapes:
            x = torch.rand(b, 3, h, w, device=device)
            try:
                x_in = x.cpu() if "onnxruntime" in name else x
                with torch.inference_mode():
                    row[shape_key(b, h, w)] = median_seconds(partial(runner, x_in), warmup, repeats, cuda) / b
            except Exception as e:
                row[shape_key(b, h, w)] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return results


def measure_video(model: Path, clip: Path, folder: Path, max_frames: int | None) -> dict[str, float]:
    """End-to-end frames/s of `fast-nst stylize MODEL clip` with the default backend for this machine."""
    from fast_nst.video import stylize_video  # PyAV: only this part needs it (the GPU machine lacks it)

    stylizer = Stylizer.load(model, precision="fp16" if torch.cuda.is_available() else "fp32")
    start = time.perf_counter()
    report = stylize_video(stylizer, clip, folder / f"{clip.stem}.mp4", overwrite=True, max_frames=max_frames)
    seconds = time.perf_counter() - start
    return {"frames": report.frames, "seconds": seconds, "frames_per_s": report.frames / seconds}
