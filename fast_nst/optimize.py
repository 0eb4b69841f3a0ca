"""The original method of Gatys et al. (2016): optimise the pixels of one image directly.

Same loss network and loss terms as training (vgg.py, losses.py). The image is optimised in
[0, 1] and clamped back into range after every step. L-BFGS runs without a line search, one
iteration per `step()` call, as in Johnson's neural-style: every call then costs exactly one
forward and backward pass, and the loop can clamp, report and save between iterations.
Coarse-to-fine (`scales`) starts each scale from the previous result, upsampled, which is what
makes 1024 px and more tractable: the large scale only refines texture.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from rich.console import Console
from torch import Tensor

from .color import preserve_color
from .config import OptimizeConfig
from .device import amp_dtype, pick_device
from .errors import UserError
from .files import (
    open_image,
    pil_to_tensor,
    refuse_to_replace,
    resize_long_side,
    rgb,
    save_image,
    tensor_to_pil,
)
from .losses import LossTerms, PerceptualLoss, parse_layer_weights
from .progress import progress_bar
from .vgg import VGG19Encoder

DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


def optimize(cfg: OptimizeConfig, console: Console | None = None, overwrite: bool = False) -> Tensor:
    """Run the whole optimisation and write `cfg.out`; returns the final image (1, 3, H, W) on CPU.

    overwrite: replace an existing `cfg.out` (never one of the inputs)."""
    console = console or Console(stderr=True)
    cfg.validate()
    refuse_to_replace(Path(cfg.out), overwrite, inputs=[Path(cfg.content), *map(Path, cfg.styles)])
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
    progress = progress_bar("optimize {task.description}", console, "stats", eta=False)

    image: Tensor | None = None
    with progress:
        for scale in cfg.scales:
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
