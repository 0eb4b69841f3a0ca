"""The one inference path: a model file in, stylised pixels out, for the CLI, the Python API and video.

A `Stylizer` wraps a backend (PyTorch eager or ONNX Runtime) that maps (N, 3, H, W) float RGB in
[0, 1] to the same, and adds what every caller needs around it: batching, tiling for images too big
to run in one piece, colour preservation and strength. Images and folders are handled here too.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor

from .color import preserve_color
from .data import find_images
from .errors import UserError
from .files import open_image, pil_to_tensor, save_image, tensor_to_pil
from .styles import builtin_style, looks_like_a_name

ONNX_FORMAT = "fast-nst-onnx"
IO_CONVENTION = "input and output: (batch, 3, height, width) float32 RGB in [0, 1]"
# Above this many pixels an image is stylised in tiles. Untiled, a width-32 network holds about
# 400 bytes of activations per pixel: 2048 x 2048 is ~1.7 GB, which any machine has to spare.
MAX_UNTILED_PIXELS = 2048 * 2048
DEFAULT_TILE = 1024
MIN_SIDE = 5  # the 9x9 input convolution reflect-pads by 4
# Wider than the network's receptive field (~100 px), so a tile's core never sees its edge.
DEFAULT_OVERLAP = 128
BACKENDS = ("torch", "onnxruntime")
DEVICES = ("auto", "cpu", "cuda")


def resolve_model(ref: str | Path) -> Path:
    """Turn what the user typed for a model (a file, or a built-in style's name) into a file path."""
    path = Path(ref)
    if path.is_file():
        return path
    if looks_like_a_name(ref):
        return builtin_style(str(ref)).pt
    raise UserError(f"{path}: no such model file")


def cache_dir() -> Path:
    """$FAST_NST_CACHE, else the platform's user cache folder."""
    if "FAST_NST_CACHE" in os.environ:
        return Path(os.environ["FAST_NST_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fast-nst"


def cached_onnx(model: Path, rebuild: bool = False) -> Path:
    """The ONNX export of a .pt model, made (and parity-checked) on first use, then reused.

    Keyed by the model file's contents and our version, so a retrained or updated model never
    picks up a stale export. rebuild: export again over a cached file that would not load.
    """
    from . import __version__
    from .export import export_onnx

    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:20]
    path = cache_dir() / "onnx" / f"{model.stem}-{digest}-{__version__}.onnx"
    if rebuild or not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(model, path, overwrite=True)
    return path


# ----------------------------------------------------------------------------------------------
# Backends: (N, 3, H, W) float32 in [0, 1] on the CPU -> the same.


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

    @property
    def description(self) -> str:
        extras = [self.precision] + ["channels-last"] * self.channels_last + ["compiled"] * self.compile
        return f"torch on {self.device} ({', '.join(extras)})"

    def tile_runner(self, image: Tensor) -> Callable[[Tensor], Tensor]:
        """Run tiles of `image` with every InstanceNorm fixed to the whole image's statistics.

        A tile normalised by its own statistics comes out in a different tone from its
        neighbours (a sky tile, a street tile); shared statistics make the tiles agree. They are
        measured on the whole image, downscaled to MAX_UNTILED_PIXELS when it is bigger.
        """
        norms = [m for m in self.net.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
        factor = min(1.0, (MAX_UNTILED_PIXELS / (image.shape[-2] * image.shape[-1])) ** 0.5)
        small = F.interpolate(image, scale_factor=factor, mode="area") if factor < 1 else image
        stats: list[tuple[Tensor, Tensor]] = []

        def record(module: torch.nn.Module, inputs: tuple[Tensor], output: Tensor) -> None:
            x = inputs[0].float()
            stats.append((x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)))

        with _hooks(norms, lambda m: record):
            self._apply(self.net, small)  # eager: hooks on a compiled graph would recompile it

        def frozen(i: int) -> Callable:
            def hook(module: torch.nn.InstanceNorm2d, inputs: tuple[Tensor], output: Tensor) -> Tensor:
                mean, var = stats[i]
                y = (inputs[0].float() - mean) * torch.rsqrt(var + module.eps)
                return (y * module.weight[:, None, None] + module.bias[:, None, None]).to(output.dtype)

            return hook

        def run(tiles: Tensor) -> Tensor:
            with _hooks(norms, lambda m: frozen(norms.index(m))):
                return self._apply(self.net, tiles)

        return run


@dataclass
class OrtBackend:
    """ONNX Runtime with the best provider that really works here."""

    session: Any  # onnxruntime.InferenceSession
    input_name: str
    input_dtype: np.dtype
    name: str = "onnxruntime"

    def __call__(self, x: Tensor) -> Tensor:
        y = self.session.run(None, {self.input_name: x.numpy().astype(self.input_dtype, copy=False)})[0]
        return torch.from_numpy(np.asarray(y, dtype=np.float32))

    @property
    def description(self) -> str:
        return f"onnxruntime ({self.session.get_providers()[0]})"

    def tile_runner(self, image: Tensor) -> Callable[[Tensor], Tensor]:
        """Tiles run as they are: an ONNX graph's InstanceNorm cannot be handed outside statistics."""
        return self


@contextlib.contextmanager
def _hooks(modules: list[torch.nn.Module], make: Callable) -> Iterator[None]:
    handles = [m.register_forward_hook(make(m)) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def pick_torch_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise UserError(f"--device {device}: expected one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: this PyTorch build cannot use a CUDA GPU here")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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

    if device not in DEVICES:
        raise UserError(f"--device {device}: expected one of {', '.join(DEVICES)}")
    available = set(onnxruntime.get_available_providers())
    gpu: list[Any] = []
    if device != "cpu" and _cuda_gpu_count() > 0:
        if "TensorrtExecutionProvider" in available and _ort_provider_loads("tensorrt"):
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fast-nst" / "tensorrt"
            options = {"trt_fp16_enable": fp16, "trt_engine_cache_enable": True}
            gpu.append(("TensorrtExecutionProvider", {**options, "trt_engine_cache_path": str(cache)}))
        if "CUDAExecutionProvider" in available and _ort_provider_loads("cuda"):
            gpu.append("CUDAExecutionProvider")
    if device == "cuda" and not gpu:
        raise UserError(
            "--device cuda: ONNX Runtime cannot use a GPU here (needs an NVIDIA driver, "
            "onnxruntime-gpu and its CUDA/cuDNN libraries)"
        )
    return gpu if device == "cuda" else [*gpu, "CPUExecutionProvider"]


def _ort_session(path: Path, device: str, fp16: bool) -> tuple[OrtBackend, dict]:
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
    if len(inputs) != 1 or len(outputs) < 1 or len(shape) != 4 or shape[1] not in (3, "3", None):
        raise UserError(
            f"{path}: not an image-to-image model this tool can run "
            "(expects one (batch, 3, height, width) input)"
        )
    if inputs[0].type not in ("tensor(float)", "tensor(float16)"):
        raise UserError(f"{path}: input type {inputs[0].type} is not float (expects RGB floats in [0, 1])")
    dtype = np.dtype(np.float16 if inputs[0].type == "tensor(float16)" else np.float32)
    meta = dict(session.get_modelmeta().custom_metadata_map)
    info = _onnx_info(meta)
    return OrtBackend(session, inputs[0].name, dtype), info


def _onnx_info(meta: dict[str, str]) -> dict:
    """What our exporter wrote (style, training config, version); {} for a foreign model."""
    if meta.get("fast_nst.format") != ONNX_FORMAT:
        return {}
    try:
        config = json.loads(meta.get("fast_nst.config", "{}"))
    except json.JSONDecodeError:
        config = {}
    return {"style": meta.get("fast_nst.style"), "version": meta.get("fast_nst.version"), "config": config}


# ----------------------------------------------------------------------------------------------
# Tiling: fixed-size tiles, each stylised with a margin, blended with weights that fall to zero at
# every inner tile edge, so no edge is ever visible.


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def _ramp(size: int, overlap: int, rise: bool, fall: bool) -> Tensor:
    """1-D blend weight: climbs over `overlap` px at a rising edge, falls at a falling one."""
    w = torch.ones(size)
    ramp = (torch.arange(min(overlap, size)) + 0.5) / overlap
    if rise:
        w[: ramp.numel()] = torch.minimum(w[: ramp.numel()], ramp)
    if fall:
        w[size - ramp.numel() :] = torch.minimum(w[size - ramp.numel() :], ramp.flip(0))
    return w


def _tiles(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of each tile covering an h x w image."""
    ys, xs = _tile_starts(h, tile, overlap), _tile_starts(w, tile, overlap)
    return [(y, x, min(tile, h), min(tile, w)) for y in ys for x in xs]


def stylize_tiled(run: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int, batch: int) -> Tensor:
    """One image (1, 3, H, W), stylised tile by tile; memory bounded by the tile size.

    Tiles differ near their edges (reflection padding instead of the neighbouring pixels) and,
    unless `run` fixes the InstanceNorm statistics, in tone; blending the overlap with a linear
    ramp turns what differences remain into a gradient across `overlap` pixels, never an edge.
    """
    _, _, h, w = x.shape
    overlap = min(overlap, tile // 2)
    out = torch.zeros(3, h, w)
    weight = torch.zeros(1, h, w)
    boxes = _tiles(h, w, tile, overlap)
    for i in range(0, len(boxes), batch):
        group = boxes[i : i + batch]
        ys = run(torch.cat([x[:, :, t : t + th, s : s + tw] for t, s, th, tw in group]))
        for (t, s, th, tw), y in zip(group, ys, strict=True):
            wy = _ramp(th, overlap, rise=t > 0, fall=t + th < h)
            wx = _ramp(tw, overlap, rise=s > 0, fall=s + tw < w)
            wt = wy[:, None] * wx[None, :]
            out[:, t : t + th, s : s + tw] += y * wt
            weight[:, t : t + th, s : s + tw] += wt
    return out.div_(weight).unsqueeze(0)


# ----------------------------------------------------------------------------------------------


@dataclass
class Stylizer:
    """A loaded model plus how to apply it. Call it on a PIL image, a numpy batch or a tensor.

    strength: 1 is the network's output, 0 the input unchanged, in between a blend.
    preserve_color: keep the input's colours, take only the luminance from the style.
    tile: stylise in tiles of this side (None: only when the image has more than
    MAX_UNTILED_PIXELS); overlap: pixels shared by neighbouring tiles.
    """

    backend: TorchBackend | OrtBackend
    info: dict = field(default_factory=dict)
    strength: float = 1.0
    preserve_color: bool = False
    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.strength <= 1:
            raise UserError(f"--strength must be between 0 and 1 (got {self.strength})")
        if self.tile is not None and self.tile < 32:
            raise UserError(f"--tile must be at least 32 pixels (got {self.tile})")
        if self.overlap < 0:
            raise UserError(f"--overlap must be 0 or more (got {self.overlap})")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1 (got {self.batch_size})")

    @classmethod
    def load(
        cls,
        model: str | Path,
        device: str = "auto",
        backend: str | None = None,
        precision: str = "fp32",
        compile: bool = False,
        channels_last: bool | None = None,
        **options: Any,
    ) -> Stylizer:
        """Load a .pt (fast-nst train) or .onnx (fast-nst export, or any fitting ONNX) model.

        backend: torch or onnxruntime. None picks the fastest for the model and device: ONNX
        Runtime for .onnx, and for .pt on a CPU too (through an ONNX export made once and cached:
        1.15-1.8x faster than PyTorch eager there, the most at 1080p); PyTorch for .pt on a GPU or
        when asked for compile / a half precision / channels-last.
        precision: fp32, fp16 or bf16 (PyTorch); with ONNX Runtime, fp16 lets TensorRT use it.
        compile: torch.compile the network (slow first call, faster after).
        channels_last: None means yes on CUDA (faster convolutions there), no on the CPU.
        """
        if backend not in (None, *BACKENDS):
            raise UserError(f"--backend {backend}: expected torch or onnxruntime")
        if precision not in PRECISIONS:
            raise UserError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
        torch_only = bool(compile or channels_last or precision != "fp32")
        path = resolve_model(model)
        suffix = path.suffix.lower()
        if suffix not in (".pt", ".pth", ".onnx"):
            raise UserError(f"{path}: unknown model format '{suffix}' (expected a .pt or .onnx file)")
        if backend is None:
            on_cpu = suffix == ".onnx" or pick_torch_device(device).type == "cpu"
            backend = "onnxruntime" if on_cpu and not (torch_only and suffix != ".onnx") else "torch"
        if backend == "onnxruntime":
            fp16 = precision == "fp16"
            if suffix == ".onnx":
                return cls(*_ort_session(path, device, fp16), **options)
            cached = cached_onnx(path)
            try:
                session = _ort_session(cached, device, fp16)
            except UserError:  # a damaged cache file (a disk fault, a half-copied cache): make it anew
                session = _ort_session(cached_onnx(path, rebuild=True), device, fp16)
            return cls(*session, **options)
        if suffix == ".onnx":
            raise UserError(f"{path}: the torch backend needs the .pt model (use --backend onnxruntime)")
        from .transformer import load_model

        net, record = load_model(path)
        dev = pick_torch_device(device)
        cl = dev.type == "cuda" if channels_last is None else channels_last
        info = {**record.get("meta", {}), "version": record.get("version")}
        return cls(TorchBackend(net, dev, precision, cl, compile), info, **options)

    @property
    def style(self) -> str:
        return str(self.info.get("style") or "stylized")

    def _run(self, x: Tensor, run: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        try:
            return (run or self.backend)(x)
        except (torch.OutOfMemoryError, MemoryError):
            raise UserError(
                f"out of memory on a {x.shape[-1]}x{x.shape[-2]} image: use --tile 512 (or smaller)"
            ) from None

    def _tiled(self, image: Tensor, tile: int) -> Tensor:
        run = self.backend.tile_runner(image)
        return stylize_tiled(lambda t: self._run(t, run), image, tile, self.overlap, self.batch_size)

    def stylize_tensor(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) float RGB in [0, 1] -> the same, on the input's device."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) RGB tensor, got shape {tuple(x.shape)}")
        src = x.detach().float().cpu()
        h, w = src.shape[-2:]
        if min(h, w) < MIN_SIDE:  # reflection padding needs more pixels than it pads
            raise UserError(f"a {w}x{h} image is too small to stylise (at least {MIN_SIDE} pixels a side)")
        tile = self.tile or (DEFAULT_TILE if h * w > MAX_UNTILED_PIXELS else None)
        n = self.batch_size
        if tile is not None and max(h, w) > tile:
            y = torch.cat([self._tiled(im[None], tile) for im in src])
        else:
            y = torch.cat([self._run(src[i : i + n]) for i in range(0, len(src), n)])
        if self.preserve_color:
            y = preserve_color(y, src)
        if self.strength < 1:
            y = torch.lerp(src, y, self.strength)
        return y.to(x.device)

    def stylize_pil(self, img: Image.Image) -> Image.Image:
        """PIL in, PIL out, same size; an alpha channel is carried over untouched."""
        y = tensor_to_pil(self.stylize_tensor(pil_to_tensor(img)))
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            y.putalpha(img.convert("RGBA").getchannel("A"))
        return y

    def stylize_array(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) or (H, W, 3) uint8 RGB -> the same shape, uint8."""
        if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.ndim not in (3, 4):
            raise ValueError(f"expected uint8 (N, H, W, 3) or (H, W, 3), not {frames.dtype} {frames.shape}")
        batch = frames if frames.ndim == 4 else frames[None]
        x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div_(255)
        y = self.stylize_tensor(x).mul_(255).round_().clamp_(0, 255).to(torch.uint8)
        out = y.permute(0, 2, 3, 1).contiguous().numpy()
        return out if frames.ndim == 4 else out[0]

    def __call__(self, x: Image.Image | np.ndarray | Tensor) -> Image.Image | np.ndarray | Tensor:
        """Stylise a PIL image, a numpy uint8 HWC image/batch or a float NCHW tensor; same type back."""
        if isinstance(x, Image.Image):
            return self.stylize_pil(x)
        if isinstance(x, np.ndarray):
            return self.stylize_array(x)
        if isinstance(x, Tensor):
            return self.stylize_tensor(x)
        raise TypeError(f"cannot stylise a {type(x).__name__}: pass a PIL image, numpy array or tensor")


# ----------------------------------------------------------------------------------------------
# Files and folders


def resize_for_output(img: Image.Image, max_size: int | None, scale: float | None) -> Image.Image:
    """Apply --scale, then cap the long side at --max-size."""
    factor = scale or 1.0
    if max_size is not None:
        factor = min(factor, max_size / max(img.size))
    if factor == 1.0:
        return img
    size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


def stylize_image_file(
    stylizer: Stylizer,
    src: Path,
    dst: Path,
    max_size: int | None = None,
    scale: float | None = None,
    overwrite: bool = False,
) -> None:
    """Read, stylise, write atomically; the output format follows the output file's extension."""
    if dst.exists() and not overwrite:
        raise UserError(f"{dst}: already exists (use --overwrite to replace it)")
    if Path(src).resolve() == Path(dst).resolve():
        raise UserError(f"{dst}: the output would replace the input")
    img = resize_for_output(open_image(src), max_size, scale)
    save_output(_stylize_file(stylizer, img, src), dst)


def _stylize_file(stylizer: Stylizer, img: Image.Image, src: Path) -> Image.Image:
    try:
        return stylizer(img)
    except UserError as e:  # the runtime's errors name the image's size, not its file
        raise UserError(f"{src}: {e}") from None


def save_output(img: Image.Image, dst: Path) -> None:
    # PIL's default JPEG quality (75) visibly blurs brush strokes.
    save_image(img, dst, **({"quality": 95} if dst.suffix.lower() in (".jpg", ".jpeg", ".webp") else {}))


@dataclass
class FolderReport:
    done: int = 0
    failed: list[str] = field(default_factory=list)


def stylize_folder(
    stylizer: Stylizer,
    src: Path,
    dst: Path,
    max_size: int | None = None,
    scale: float | None = None,
    overwrite: bool = False,
    console: Console | None = None,
) -> FolderReport:
    """Every image under `src`, written to the same relative path under `dst`.

    A bad file is reported and skipped, never fatal: one corrupt photo must not stop a run over
    thousands. The next image is decoded while the current one runs through the network.
    """
    # An output folder inside the input folder holds outputs, not photos to stylise again.
    files = [f for f in find_images(src) if not f.resolve().is_relative_to(dst.resolve())]
    targets = [dst / f.relative_to(src) for f in files]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise UserError(
            f"{dst}: {len(existing)} output(s) already exist, e.g. {existing[0]} "
            "(use --overwrite to replace them)"
        )
    report = FolderReport()
    progress = Progress(
        TextColumn("[bold]stylize"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[name]}"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
    )

    def read(path: Path) -> Image.Image | UserError:
        try:
            return resize_for_output(open_image(path), max_size, scale)
        except UserError as e:
            return e

    with progress, ThreadPoolExecutor(1) as pool:
        task = progress.add_task("", total=len(files), name="")
        for path, target, img in zip(files, targets, _prefetch(pool, read, files), strict=True):
            progress.update(task, name=str(path.relative_to(src)))
            try:
                if isinstance(img, UserError):
                    raise img
                save_output(_stylize_file(stylizer, img, path), target)
                report.done += 1
            except UserError as e:
                report.failed.append(str(e))
                progress.console.print(f"[yellow]skipped:[/] {e}", soft_wrap=True)
            progress.advance(task)
    return report


def _prefetch(pool: ThreadPoolExecutor, fn: Callable, items: list, depth: int = 2) -> Iterator:
    """fn(item) for each item in order, computed `depth` items ahead on the pool."""
    futures = [pool.submit(fn, item) for item in items[:depth]]
    for i in range(len(items)):
        if i + depth < len(items):
            futures.append(pool.submit(fn, items[i + depth]))
        yield futures[i].result()
