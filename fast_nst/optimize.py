"""The original method of Gatys et al. (2016): optimise the pixels of one image directly.

Same loss network and loss terms as training (vgg.py, losses.py). The image is optimised in
[0, 1] and clamped back into range after every step. L-BFGS runs without a line search, one
iteration per `step()` call, as in Johnson's neural-style: every call then costs exactly one
forward and backward pass, and the loop can clamp, report and save between iterations.
Coarse-to-fine (`scales`) starts each scale from the previous result, upsampled, which is what
makes 1024 px and more tractable: the large scale only refines texture.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from .color import preserve_color
from .errors import UserError
from .files import open_image, pil_to_tensor, resize_long_side, rgb, save_image, tensor_to_pil
from .losses import CONTENT_LAYERS, STYLE_LAYERS, LossTerms, PerceptualLoss, parse_layer_weights
from .train import amp_dtype, pick_device
from .vgg import VGG19Encoder

INITS = ("content", "noise", "style")
OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


@dataclass
class OptimizeConfig:
    """Every setting of one optimisation."""

    content: str
    styles: list[str]
    out: str
    blend: list[float] | None = None  # one weight per style; None: equal
    scales: list[int] = field(default_factory=lambda: [512])  # long sides, coarse to fine
    iters: int = 500  # per scale
    optimizer: str = "lbfgs"
    lr: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam
    init: str = "content"
    style_weight: float = 10.0
    content_weight: float = 1.0
    tv_weight: float = 1.0
    style_layers: str = ",".join(STYLE_LAYERS)
    content_layers: str = ",".join(CONTENT_LAYERS)
    style_scale: float = 1.0  # style long side = style_scale x the current scale
    vgg_weights: str = "caffe"
    preserve_color: bool = False
    save_every: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto: bf16/fp16 for Adam on CUDA, off for L-BFGS


def parse_scales(spec: str | None, size: int | None) -> list[int]:
    """'256,512,1024' -> [256, 512, 1024]; the last scale is the output's long side."""
    if not spec:
        scales = [512 if size is None else size]
    else:
        try:
            scales = [int(s) for s in spec.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--scales {spec}: expected long sides in pixels, e.g. 256,512,1024") from None
        if not scales:
            raise UserError("--scales is empty")
        if size is not None and scales[-1] != size:
            raise UserError(f"--scales must end at --size {size} (got {spec}); or leave --size out")
    _check_scales(scales)
    return scales


def _check_scales(scales: Sequence[int]) -> None:
    if not scales or any(b <= a for a, b in itertools.pairwise(scales)):
        raise UserError(f"--scales must grow from coarse to fine (got {','.join(map(str, scales))})")
    if scales[0] < 32:
        raise UserError(f"image size must be at least 32 px (got {scales[0]})")


def parse_blend(spec: str | None) -> list[float] | None:
    """'0.7,0.3' -> [0.7, 0.3]."""
    if not spec:
        return None
    try:
        return [float(s) for s in spec.split(",")]
    except ValueError:
        raise UserError(f"--style-blend {spec}: expected numbers, e.g. 0.7,0.3") from None


def validate(cfg: OptimizeConfig) -> None:
    _check_scales(cfg.scales)
    if cfg.iters < 1:
        raise UserError(f"--iters must be at least 1 (got {cfg.iters})")
    if cfg.init not in INITS:
        raise UserError(f"--init {cfg.init}: expected one of {', '.join(INITS)}")
    if cfg.optimizer not in OPTIMIZERS:
        raise UserError(f"--optimizer {cfg.optimizer}: expected one of {', '.join(OPTIMIZERS)}")
    if cfg.lr is not None and not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise UserError(f"--lr must be a positive number (got {cfg.lr})")
    if not cfg.styles:
        raise UserError("give at least one style image")
    if cfg.blend is not None and len(cfg.blend) != len(cfg.styles):
        raise UserError(f"--style-blend has {len(cfg.blend)} weights for {len(cfg.styles)} style images")
    if not cfg.style_scale > 0:
        raise UserError(f"--style-scale must be positive (got {cfg.style_scale})")
    if cfg.save_every is not None and cfg.save_every < 1:
        raise UserError(f"--save-every must be at least 1 (got {cfg.save_every})")
    if Image.registered_extensions().get(Path(cfg.out).suffix.lower()) is None:
        raise UserError(f"{cfg.out}: unknown image extension (use .png, .jpg, .webp ...)")


StepCallback = Callable[[int, int, Tensor], None]  # (scale index, iteration, image)


def optimize(
    cfg: OptimizeConfig, console: Console | None = None, on_step: StepCallback | None = None
) -> Tensor:
    """Run the whole optimisation and write `cfg.out`; returns the final image (1, 3, H, W) on CPU.

    `on_step` is called after every iteration (benchmarks record time and image there).
    """
    console = console or Console(stderr=True)
    validate(cfg)
    # Everything the user named is read before any slow work, so a typo fails at once.
    content_img = rgb(open_image(Path(cfg.content)))
    style_imgs = [rgb(open_image(Path(s))) for s in cfg.styles]
    device = pick_device(cfg.device)
    dtype = amp_dtype(cfg.amp, device)
    if cfg.amp == "auto" and cfg.optimizer == "lbfgs":
        dtype = None  # L-BFGS builds its curvature model from gradient differences: keep them exact
    lr = cfg.lr or DEFAULT_LR[cfg.optimizer]
    style_layers = parse_layer_weights(cfg.style_layers)
    content_layers = list(parse_layer_weights(cfg.content_layers))
    encoder = VGG19Encoder([*style_layers, *content_layers], cfg.vgg_weights).to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    out = Path(cfg.out)
    progress = Progress(
        TextColumn("[bold]optimize {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
    )

    image: Tensor | None = None
    with progress:
        for index, scale in enumerate(cfg.scales):
            content = pil_to_tensor(resize_long_side(content_img, scale)).to(device)
            styles = [
                pil_to_tensor(resize_long_side(s, max(32, round(scale * cfg.style_scale)))).to(device)
                for s in style_imgs
            ]
            loss_fn = PerceptualLoss(
                encoder,
                styles,
                style_layers,
                content_layers,
                cfg.style_weight,
                cfg.content_weight,
                cfg.tv_weight,
                cfg.blend,
            )
            if image is None:
                image = initial_image(cfg.init, content, style_imgs[0], generator)
            else:
                image = F.interpolate(image, size=content.shape[-2:], mode="bicubic", align_corners=False)
            task = progress.add_task(f"{scale}px", total=cfg.iters, stats="")
            start = time.perf_counter()
            steps = iterate(
                loss_fn, loss_fn.content_targets(content), image.clamp(0, 1), cfg.optimizer, lr, dtype
            )
            for i in range(1, cfg.iters + 1):
                image, terms = next(steps)
                total, style, content_l, tv = (float(v) for v in terms.detached().values())
                if not math.isfinite(total):
                    raise UserError(
                        f"the optimisation diverged at iteration {i} (loss {total}); "
                        "try --optimizer adam or lower weights"
                    )
                progress.update(
                    task,
                    completed=i,
                    stats=f"loss {total:.4f} (style {style:.4f} content {content_l:.4f} tv {tv:.4f})  "
                    f"{i / (time.perf_counter() - start):.2f} it/s",
                )
                if on_step is not None:
                    on_step(index, i, image)
                if cfg.save_every and i % cfg.save_every == 0:
                    name = f"{out.stem}_{scale}px_{i:05d}{out.suffix}"
                    save_image(_finish(image, content, cfg.preserve_color), out.with_name(name))
    assert image is not None
    save_image(_finish(image, content, cfg.preserve_color), out)
    return image.cpu()


def initial_image(kind: str, content: Tensor, style: Image.Image, generator: torch.Generator) -> Tensor:
    """The first scale's starting point: the photo (keeps its layout), white noise, or the painting."""
    if kind == "content":
        return content.clone()
    if kind == "noise":
        return torch.rand(content.shape, generator=generator).to(content)
    h, w = content.shape[-2:]
    return pil_to_tensor(style.resize((w, h), Image.Resampling.LANCZOS)).to(content)


def iterate(
    loss_fn: PerceptualLoss,
    content_targets: dict[str, Tensor],
    init: Tensor,
    optimizer: str,
    lr: float,
    dtype: torch.dtype | None,
) -> Iterator[tuple[Tensor, LossTerms]]:
    """Optimise the pixels of `init`, forever; yields (image in [0, 1], the terms that step measured).

    The terms are those of the image the step started from: L-BFGS evaluates before it moves.
    """
    x = init.detach().clone().requires_grad_(True)
    if optimizer == "lbfgs":
        # A long history: the curvature model of a 512 px image keeps improving up to ~100 pairs.
        opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=100)
    else:
        opt = torch.optim.Adam([x], lr=lr)
    terms: LossTerms | None = None

    def closure() -> Tensor:
        nonlocal terms
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            terms = loss_fn(x, content_targets)
        terms.total.backward()
        return terms.total

    while True:
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        assert terms is not None
        yield x.detach(), terms


def _finish(image: Tensor, content: Tensor, keep_color: bool) -> Image.Image:
    return tensor_to_pil(preserve_color(image, content) if keep_color else image)
