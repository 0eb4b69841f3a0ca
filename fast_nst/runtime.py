"""The one inference path: a model file in, stylised pixels out, for the CLI, the Python API and video.

A `Stylizer` wraps a backend (`backends`: PyTorch or ONNX Runtime) and adds what every caller needs
around it: batching, tiling for images too big to run in one piece (`tiling`), colour preservation
and strength. `stylize_path` runs one on an image, a folder of images or a video, as the CLI does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.markup import escape
from torch import Tensor

from .backends import PRECISIONS, OrtBackend, TorchBackend, ort_session
from .color import preserve_color
from .config import TEMPORAL, FilterSettings
from .data import find_files
from .device import pick_device
from .errors import UserError, failures_listed
from .export import cached_onnx
from .files import (
    IMAGE_EXTENSIONS,
    float_to_uint8,
    open_image,
    pil_to_tensor,
    refuse_to_replace,
    save_image,
    tensor_to_pil,
    uint8_to_float,
)
from .progress import progress_bar
from .styles import resolve_model
from .tiling import DEFAULT_OVERLAP, DEFAULT_TILE, MAX_UNTILED_PIXELS, stylize_tiled
from .transformer import load_model

MIN_SIDE = 5  # the 9x9 input convolution reflect-pads by 4
BACKENDS = ("torch", "onnxruntime")


@dataclass
class Stylizer:
    """A loaded model plus how to apply it. Call it on a PIL image, a numpy batch or a tensor.

    strength: 1 is the network's output, 0 the input unchanged, in between a blend.
    preserve_color: keep the input's colours, take only the luminance from the style.
    tile: stylise in tiles of this side (None: only when the image has more than
    MAX_UNTILED_PIXELS); overlap: pixels shared by neighbouring tiles (None: DEFAULT_OVERLAP, at
    most half the tile; given, more than half is an error, as tiles would overlap more than they
    advance).
    """

    backend: TorchBackend | OrtBackend
    info: dict = field(default_factory=dict)
    strength: float = 1.0
    preserve_color: bool = False
    tile: int | None = None
    overlap: int | None = None
    batch_size: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.strength <= 1:
            raise UserError(f"--strength must be between 0 and 1 (got {self.strength})")
        if self.tile is not None and self.tile < 32:
            raise UserError(f"--tile must be at least 32 pixels (got {self.tile})")
        half = (self.tile or DEFAULT_TILE) // 2
        if self.overlap is not None and not 0 <= self.overlap <= half:
            raise UserError(f"--overlap must be 0 to half the tile, {half} (got {self.overlap})")
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
            on_cpu = suffix == ".onnx" or pick_device(device).type == "cpu"
            backend = "onnxruntime" if on_cpu and not (torch_only and suffix != ".onnx") else "torch"
        if backend == "onnxruntime":
            fp16 = precision == "fp16"
            if suffix == ".onnx":
                return cls(*ort_session(path, device, fp16), **options)
            cached = cached_onnx(path)
            try:
                ort, info = ort_session(cached, device, fp16)
            except UserError:  # a damaged cache file (a disk fault, a half-copied cache): make it anew
                ort, info = ort_session(cached_onnx(path, rebuild=True), device, fp16)
            ort.torch_twin = lambda: TorchBackend(load_model(path)[0], pick_device(device))
            return cls(ort, info, **options)
        if suffix == ".onnx":
            raise UserError(f"{path}: the torch backend needs the .pt model (use --backend onnxruntime)")
        net, record = load_model(path)
        dev = pick_device(device)
        cl = dev.type == "cuda" if channels_last is None else channels_last
        info = {**record.get("meta", {}), "version": record.get("version")}
        return cls(TorchBackend(net, dev, precision, cl, compile), info, **options)

    @property
    def style(self) -> str:
        return str(self.info.get("style") or "stylized")

    @property
    def filter_settings(self) -> FilterSettings:
        """The video filter's settings measured for this network and recorded in its file
        (`config.FilterSettings`; the plain filter's where it records none)."""
        return FilterSettings.recorded(self.info)

    def _run(self, x: Tensor, run: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        try:
            return (run or self.backend)(x)
        except (torch.OutOfMemoryError, MemoryError):
            raise UserError(
                f"out of memory on a {x.shape[-1]}x{x.shape[-2]} image: use --tile 512 (or smaller)"
            ) from None

    def _tiled(self, image: Tensor, tile: int) -> Tensor:
        run = self.backend.tile_runner(image)
        overlap = DEFAULT_OVERLAP if self.overlap is None else self.overlap
        return stylize_tiled(lambda t: self._run(t, run), image, tile, overlap)

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
            parts = [self._tiled(im[None], tile) for im in src]
        else:
            parts = [self._run(src[i : i + n]) for i in range(0, len(src), n)]
        y = parts[0] if len(parts) == 1 else torch.cat(parts)  # a big image is not copied again
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
        out = float_to_uint8(
            self.stylize_tensor(uint8_to_float(frames if frames.ndim == 4 else frames[None]))
        )
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
    refuse_to_replace(dst, overwrite, inputs=[src])
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
    images: int = 0
    videos: int = 0
    failed: list[str] = field(default_factory=list)


def stylize_folder(
    stylizer: Stylizer,
    src: Path,
    dst: Path,
    max_size: int | None = None,
    scale: float | None = None,
    overwrite: bool = False,
    console: Console | None = None,
    frames: int | None = None,
    temporal: float | None = None,
    crf: int | None = None,
) -> FolderReport:
    """Every image and video under `src`, written to the same relative path under `dst` (a video
    in the container `video.video_suffix` picks).

    A bad file is reported and skipped, never fatal: one corrupt photo must not stop a run over
    thousands. Images come first, the next decoded while the current one runs through the network;
    then the videos, one at a time (each has its own progress bar, and rich shows one at a time).
    """
    from .video import VIDEO_EXTENSIONS, stylize_video, video_suffix

    console = console or Console(stderr=True, highlight=False)
    if dst.is_file():
        raise UserError(f"{dst}: is a file; the output of a folder is a folder")
    if dst.suffix.lower() in Image.registered_extensions() or dst.suffix.lower() in VIDEO_EXTENSIONS:
        raise UserError(f"{dst}: the output of a folder is a folder, not a file")
    if dst.resolve() == src.resolve():
        raise UserError(f"{dst}: the output folder is the input folder (name another with -o)")

    # One walk for both kinds. An output folder inside the input folder holds outputs, not files to
    # stylise again.
    outputs = dst.resolve()
    files = [
        f
        for f in find_files(src, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
        if not f.resolve().is_relative_to(outputs)
    ]
    videos = [f for f in files if f.suffix.lower() in VIDEO_EXTENSIONS]
    images = [f for f in files if f.suffix.lower() not in VIDEO_EXTENSIONS]
    if not images and not videos:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
        raise UserError(f"{src}: no images or videos found (looked for {exts}, in all subfolders)")
    none = "this folder holds none"
    no_image, no_video = None if images else none, None if videos else none
    refuse_unused_options(src, no_image, no_video, max_size, scale, frames, temporal, crf)
    image_targets = [dst / f.relative_to(src) for f in images]
    video_targets = [(dst / f.relative_to(src)).with_suffix(video_suffix(f)) for f in videos]
    last = dict(zip(video_targets, videos, strict=True))  # the last source of each target
    for target, source in zip(video_targets, videos, strict=True):
        if last[target] != source:  # clip.webm and clip.mp4 both to clip.mp4
            raise UserError(f"{source} and {last[target]} would both be written to {target}")
    existing = [t for t in image_targets + video_targets if t.exists()]
    if existing and not overwrite:
        raise UserError(
            f"{dst}: {len(existing)} output(s) already exist, e.g. {existing[0]} "
            "(use --overwrite to replace them)"
        )
    report = FolderReport()

    def skipped(e: UserError) -> None:
        report.failed.append(str(e))
        console.print(f"[yellow]skipped:[/] {escape(str(e))}", soft_wrap=True)

    def read(path: Path) -> Image.Image | UserError:
        try:
            return resize_for_output(open_image(path), max_size, scale)
        except UserError as e:
            return e

    if images:
        progress = progress_bar("stylize", console, "name")
        with progress, ThreadPoolExecutor(1) as pool:
            task = progress.add_task("", total=len(images), name="")
            for path, target, img in zip(images, image_targets, _prefetch(pool, read, images), strict=True):
                progress.update(task, name=str(path.relative_to(src)))
                try:
                    if isinstance(img, UserError):
                        raise img
                    save_output(_stylize_file(stylizer, img, path), target)
                    report.images += 1
                except UserError as e:
                    skipped(e)
                progress.advance(task)
    steadiness = TEMPORAL if temporal is None else temporal
    for path, target in zip(videos, video_targets, strict=True):
        console.print(f"{path.relative_to(src)}:", soft_wrap=True, markup=False)
        try:
            video = stylize_video(stylizer, path, target, overwrite, console, frames, steadiness, crf=crf)
            if video.damage:
                raise damaged(path, video)
            report.videos += 1
        except UserError as e:
            skipped(e)
    return report


def refuse_unused_options(
    source: Path,
    no_image: str | None,
    no_video: str | None,
    max_size: int | None,
    scale: float | None,
    frames: int | None,
    temporal: float | None,
    crf: int | None,
) -> None:
    """An option for a kind of file that `source` holds none of is an error, not ignored: the user
    meant it to do something. no_image, no_video: why that kind's options do nothing here (None:
    it holds that kind)."""
    if no_image and (max_size is not None or scale is not None):
        raise UserError(f"{source}: --max-size and --scale resize images; {no_image}")
    for option, value, does in (
        ("--frames", frames, "limits a video's frames"),
        ("--temporal", temporal, "steadies a video's frames"),
        ("--crf", crf, "sets a video's H.264 quality"),
    ):
        if no_video and value is not None:
            raise UserError(f"{source}: {option} {does}; {no_video}")


def damaged(source: Path, video: Any) -> UserError:
    """The error for a video stylised only up to its damage (`VideoReport.damage`): the frames
    before it are written, but the user must hear that the output is short."""
    return UserError(f"{source}: damaged, stylised up to frame {video.frames} ({video.damage})")


def stylize_path(
    stylizer: Stylizer,
    source: Path,
    out: Path | None = None,
    max_size: int | None = None,
    scale: float | None = None,
    overwrite: bool = False,
    frames: int | None = None,
    console: Console | None = None,
    temporal: float | None = None,
    crf: int | None = None,
) -> Path:
    """Stylise an image file, a video (sound kept), or every image and video under a folder; what
    `fast-nst stylize` does. Returns the output written (default: beside the source, named after
    the style).

    Failures are one-line `UserError`s; a folder's bad files are skipped and listed, then raised as
    one error at the end, after every good file is written. max_size / scale resize images, frames,
    temporal (default TEMPORAL) and crf (default CRF) are for videos; given for a source that holds
    none of that kind they are an error, not ignored.
    """
    from .video import is_video_path, stylize_video, video_suffix

    console = console or Console(stderr=True, highlight=False)
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source}: no such file or folder")
    if (scale is not None and scale <= 0) or (max_size is not None and max_size < 1):
        raise UserError("--scale and --max-size must be positive")
    folder = source.is_dir()
    is_video = not folder and is_video_path(source)
    if not folder:
        no_image, no_video = ("this is a video", None) if is_video else (None, "this is not a video")
        refuse_unused_options(source, no_image, no_video, max_size, scale, frames, temporal, crf)
    named = source if source.name else source.resolve()  # "." is named after the folder it is
    suffix = "" if folder else video_suffix(source) if is_video else source.suffix
    name = f"{named.stem}_{stylizer.style}{suffix}"
    if out is None:
        if not named.name:
            raise UserError(f"{source}: name the output with -o")
        out = named.with_name(name)
    elif not folder and Path(out).is_dir():  # like cp: into that folder
        out = Path(out) / name
    out = Path(out)
    if folder:
        report = stylize_folder(
            stylizer, source, out, max_size, scale, overwrite, console, frames, temporal, crf
        )
        console.print(
            f"{report.images} image(s) and {report.videos} video(s) written to {out}",
            soft_wrap=True,
            markup=False,
        )
        if report.failed:
            total = report.images + report.videos + len(report.failed)
            raise failures_listed(console, report.failed, f"{len(report.failed)} of {total} files failed")
    elif is_video:
        steadiness = TEMPORAL if temporal is None else temporal
        video = stylize_video(stylizer, source, out, overwrite, console, frames, steadiness, crf=crf)
        console.print(
            f"{out}: {video.frames} frame{'s' * (video.frames != 1)} at {video.fps:g} fps, "
            f"audio {video.audio}",
            soft_wrap=True,
            markup=False,
        )
        if video.damage:
            raise damaged(source, video)
    else:
        stylize_image_file(stylizer, source, out, max_size, scale, overwrite)
        console.print(f"{out}: written", soft_wrap=True, markup=False)
    return out


def _prefetch(pool: ThreadPoolExecutor, fn: Callable, items: list, depth: int = 2) -> Iterator:
    """fn(item) for each item in order, computed `depth` items ahead on the pool."""
    futures = [pool.submit(fn, item) for item in items[:depth]]
    for i in range(len(items)):
        if i + depth < len(items):
            futures.append(pool.submit(fn, items[i + depth]))
        yield futures[i].result()
