"""Inference backends: (N, 3, H, W) float32 RGB in [0, 1] on the CPU in, the same out.

PyTorch (eager or compiled, fp32/fp16/bf16) and ONNX Runtime with the best execution provider that
really works on this machine; `runtime.Stylizer` picks one and adds batching, tiling and the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .config import FILTER_SETTINGS
from .errors import UserError
from .export import ONNX_FORMAT, cache_dir
from .tiling import stats_sample

ORT_DEVICES = ("auto", "cpu", "cuda")  # ONNX Runtime's providers here: the CPU, or an NVIDIA GPU
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class TorchBackend:
    """PyTorch: eager, or compiled with `torch.compile`; fp32, fp16 or bf16; optionally channels-last.

    Half precisions run the whole network in that type (InstanceNorm is stable there: it
    normalises 64x64+ maps whose statistics fit easily); the result comes back as float32.
    """

    net: torch.nn.Module
    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    name: str = "torch"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision}: expected one of {', '.join(PRECISIONS)}")
        self.dtype = PRECISIONS[self.precision]
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.net = self.net.to(self.device, self.dtype, memory_format=self.memory_format).eval()
        # Static shapes: one graph per image size, which is what --compile is for (a video's frames).
        # dynamic=True would serve every size with one graph, but torch 2.13's inductor cannot lower
        # the network's pad-to-a-multiple-of-4 arithmetic symbolically.
        self.forward = torch.compile(self.net, dynamic=False) if self.compile else self.net

    def __call__(self, x: Tensor) -> Tensor:
        return self._apply(self.forward, x)

    def _apply(self, forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        x = x.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            y = forward(x)
        return y.float().cpu()

    def tile_runner(self, image: Tensor) -> Callable[[Tensor], Tensor]:
        """Run tiles of `image` with every InstanceNorm fixed to the whole image's statistics.

        A tile normalised by its own statistics comes out in a different tone from its
        neighbours (a sky tile, a street tile); shared statistics make the tiles agree. They are
        measured on the whole image when it has at most STATS_PIXELS, else on patches of it at
        full resolution (`stats_sample`) normalised together as one image. (Measured on the image
        downscaled instead, they are those of another scale: a 6000x4000 photo came out 17/255
        away from its untiled result on average, against 9/255 this way; the untiled run needs
        10.5 GB.)
        """
        stats: list[tuple[Tensor, Tensor]] = []

        def measure(i: int, norm: torch.nn.InstanceNorm2d, x: Tensor) -> Tensor:
            var, mean = torch.var_mean(x.float(), (0, 2, 3), unbiased=False, keepdim=True)
            stats.append((mean, var))
            return _normalise(norm, x, mean, var)

        with _instance_norms(self.net, measure):
            self._apply(self.net, stats_sample(image))  # eager: a compiled graph would not see the swap

        def run(tiles: Tensor) -> Tensor:
            with _instance_norms(self.net, lambda i, norm, x: _normalise(norm, x, *stats[i])):
                return self._apply(self.net, tiles)

        return run


def _normalise(norm: torch.nn.InstanceNorm2d, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """InstanceNorm with given statistics, in place: `x` is a convolution's output that nothing
    else reads (TransformerNet's norms all follow one), and at 6000x4000 each copy is 0.5 GB."""
    scale = torch.rsqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1)
    return x.sub_(mean.to(x.dtype)).mul_(scale.to(x.dtype)).add_(norm.bias.view(1, -1, 1, 1).to(x.dtype))


@contextlib.contextmanager
def _instance_norms(net: torch.nn.Module, normalise: Callable[..., Tensor]) -> Iterator[None]:
    """Every InstanceNorm2d of `net` computes `normalise(index, module, x)` instead, for a while."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    for i, norm in enumerate(norms):
        norm.forward = functools.partial(normalise, i, norm)
    try:
        yield
    finally:
        for norm in norms:
            del norm.forward


@dataclass
class OrtBackend:
    """ONNX Runtime with the best provider that really works here.

    torch_twin: the same network in PyTorch (when the model came from a .pt file), built on first
    need, for tiles: see `tile_runner`.
    """

    session: Any  # onnxruntime.InferenceSession
    input_name: str
    input_dtype: np.dtype
    torch_twin: Callable[[], TorchBackend] | None = None
    name: str = "onnxruntime"
    _twin: TorchBackend | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # A model exported with fixed dimensions (some runtimes want them) runs at those only.
        batch, _, height, width = self.session.get_inputs()[0].shape
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.fixed_size = (height, width) if isinstance(height, int) and isinstance(width, int) else None

    def __call__(self, x: Tensor) -> Tensor:
        if self.fixed_size is not None and tuple(x.shape[-2:]) != self.fixed_size:
            h, w = self.fixed_size
            raise UserError(
                f"the model takes {w}x{h} only (exported with a fixed --size), not "
                f"{x.shape[-1]}x{x.shape[-2]}: resize the input to that, or export the model without --size"
            )
        n = self.fixed_batch or len(x)
        return torch.cat([self._run(x[i : i + n], n) for i in range(0, len(x), n)])

    def _run(self, x: Tensor, batch: int) -> Tensor:
        short = batch - len(x)  # a fixed batch size: fill it with copies of the last image
        full = torch.cat([x, x[-1:].expand(short, *x.shape[1:])]) if short else x
        y = self.session.run(None, {self.input_name: full.numpy().astype(self.input_dtype, copy=False)})[0]
        if y.shape != full.shape:  # e.g. one grey channel, or an upscaler's bigger image
            raise UserError(
                f"the model made a {y.shape} output from a {tuple(full.shape)} image: not RGB in, RGB out"
            )
        return torch.from_numpy(np.asarray(y, dtype=np.float32))[: len(x)]

    def tile_runner(self, image: Tensor) -> Callable[[Tensor], Tensor]:
        """An ONNX graph's InstanceNorm normalises each tile by the tile's own statistics, so tiles
        come out in different tones: blocks across a big sky (6000x4000 px), which no blending
        hides. With a PyTorch twin the tiles run there, with the whole image's statistics; a bare
        .onnx file's tiles run as they are, their tones blended over the overlap."""
        if self.torch_twin is None:
            return self
        if self._twin is None:
            self._twin = self.torch_twin()
        return self._twin.tile_runner(image)


def _cuda_gpu_count() -> int:
    """GPUs the CUDA driver sees, asked of the driver library itself: 0 when there is none."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1" if os.name != "nt" else "nvcuda.dll")
        count = ctypes.c_int(0)
        if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    except (OSError, AttributeError):
        return 0


def _ort_provider_loads(kind: str) -> bool:
    """Whether ONNX Runtime's provider library and everything it links (cuDNN, TensorRT...) loads.

    Loading it ourselves fails quietly with an OSError; letting ONNX Runtime try prints a screen
    of library errors before it falls back to the CPU.
    """
    import onnxruntime

    capi = Path(onnxruntime.__file__).parent / "capi"
    libs = glob.glob(str(capi / f"*onnxruntime_providers_{kind}.*"))
    shared = glob.glob(str(capi / "*onnxruntime_providers_shared.*"))
    try:
        for lib in shared[:1] + libs[:1]:
            ctypes.CDLL(lib, mode=getattr(ctypes, "RTLD_GLOBAL", 0))
    except OSError:
        return False
    return bool(libs)


def ort_providers(device: str, fp16: bool) -> list[Any]:
    """Providers to ask for, best first, keeping only those that can really run here."""
    import onnxruntime

    if device not in ORT_DEVICES:
        raise UserError(
            f"--device {device}: ONNX Runtime runs on {', '.join(ORT_DEVICES)} (--backend torch for others)"
        )
    available = set(onnxruntime.get_available_providers())
    gpu: list[Any] = []
    if device != "cpu" and _cuda_gpu_count() > 0:
        if "TensorrtExecutionProvider" in available and _ort_provider_loads("tensorrt"):
            options = {"trt_fp16_enable": fp16, "trt_engine_cache_enable": True}
            gpu.append(
                (
                    "TensorrtExecutionProvider",
                    {**options, "trt_engine_cache_path": str(cache_dir() / "tensorrt")},
                )
            )
        if "CUDAExecutionProvider" in available and _ort_provider_loads("cuda"):
            gpu.append("CUDAExecutionProvider")
    if device == "cuda" and not gpu:
        raise UserError(
            "--device cuda: ONNX Runtime cannot use a GPU here (needs an NVIDIA driver, "
            "onnxruntime-gpu and its CUDA/cuDNN libraries)"
        )
    return gpu if device == "cuda" else [*gpu, "CPUExecutionProvider"]


def ort_session(path: Path, device: str, fp16: bool) -> tuple[OrtBackend, dict]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: provider fallbacks are our job to report
    # Idle ORT threads otherwise spin for a while after each run, starving the video decode and
    # encode threads (and anything else in the process) of CPU.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=ort_providers(device, fp16))
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{path}: ONNX Runtime cannot load it ({str(e).splitlines()[0][:200]})") from None
    if device == "cuda" and session.get_providers()[0] == "CPUExecutionProvider":
        raise UserError(f"--device cuda: ONNX Runtime could not run {path} on the GPU")
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape if len(inputs) == 1 else []
    out_shape = outputs[0].shape if outputs else []
    rgb = (3, "3", None)  # a named dimension is a string; an unnamed one None
    if (
        len(inputs) != 1
        or len(shape) != 4
        or shape[1] not in rgb
        or len(out_shape) != 4
        or out_shape[1] not in rgb
    ):
        described = ", ".join(f"{io.name} {tuple(io.shape)}" for io in (*inputs, *outputs))
        raise UserError(
            f"{path}: not an image-to-image model this tool can run (expects one (batch, 3, height, "
            f"width) RGB input and output; it has {described})"
        )
    if inputs[0].type not in ("tensor(float)", "tensor(float16)"):
        raise UserError(f"{path}: input type {inputs[0].type} is not float (expects RGB floats in [0, 1])")
    dtype = np.dtype(np.float16 if inputs[0].type == "tensor(float16)" else np.float32)
    meta = dict(session.get_modelmeta().custom_metadata_map)
    info = onnx_info(meta)
    return OrtBackend(session, inputs[0].name, dtype), info


def onnx_info(meta: dict[str, str]) -> dict:
    """What our exporter wrote (style, training config, version); {} for a foreign model."""
    if meta.get("fast_nst.format") != ONNX_FORMAT:
        return {}
    try:
        config = json.loads(meta.get("fast_nst.config", "{}"))
    except json.JSONDecodeError:
        config = {}
    info = {"style": meta.get("fast_nst.style"), "version": meta.get("fast_nst.version"), "config": config}
    for name in FILTER_SETTINGS:
        if f"fast_nst.{name}" in meta:
            info[name] = meta[f"fast_nst.{name}"]
    return info
