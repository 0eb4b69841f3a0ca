"""Every setting of `train` and `optimize`, declared once: default, --help text, panel, validation.

The configs are what Python callers build and what checkpoints store; the CLI generates its options
from their fields (`cli.config_options`), so a default or a help text exists once and the two
cannot drift. A field declared with `setting` is an option; a plain field is set another way.
Nothing here imports torch, so `fast-nst --help` stays quick.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import UserError

DATA, LOSS, OPTIM, OUTPUT, SPEED = "Data", "Loss", "Optimisation", "Output and logging", "Speed"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)
# How the style layers combine, and in whose units (losses.StyleLoss, PerceptualLoss.balance_style_layers):
# gap: geometric mean, a photo's units; balanced: arithmetic mean, a photo's units; gram: Gatys'.
STYLE_LOSSES = ("gap", "balanced", "gram")
SCHEDULES = ("cosine", "constant")
INITS = ("content", "noise", "style")
OPTIMIZERS = ("lbfgs", "adam")
# Videos: strength of the flow-guided blend against flicker (`stylize --temporal`, temporal.py).
# Chosen by measurement (BENCHMARKS.md, "Flicker"): at 0.9 the temporal error fell by 50-80% on the
# clips with motion and a faded-in photo, for at most +0.025 of style gap and a sixth of the frames/s.
TEMPORAL = 0.9
# Videos: x264's constant rate factor (`stylize --crf`, video.py), 0 (lossless) to 51. 18 is near
# transparent: brush strokes are all fine detail. Lower keeps more of them, and of the filter's
# steadiness, in larger files (BENCHMARKS.md, "What H.264 does to the figures").
CRF = 18
# How much of the contrast that averaging took is given back. All of it gives back the flicker too
# (the deviations are scaled, the frame-to-frame ones with them); half kept the style gap within
# +0.011 of per-frame stylisation on the clips it was chosen on, where the plain blend lost up to 0.06.
CONTRAST_RESTORED = 0.5


@dataclass(frozen=True)
class FilterSettings:
    """What of the filter is a property of the network: measured for each built-in style and
    recorded in its model file (the `.pt`'s meta, the ONNX file's `fast_nst.<name>` metadata), so
    that `stylize` uses it without being told. The defaults are the plain filter's.

    fade_discount (k): in a fade-in the previous input is relit by the frame's contrast gain g, and
    so is all it kept of earlier, darker frames: frame j's share of frame t's input, in units of
    frame t's brightness, is (1 - w)(w g)^(t - j), w the steadying. Once w g > 1 (g above 1.053; Big
    Buck Bunny's opening reaches 1.5 a frame) the darkest frames weigh most, and their codec blocks
    and noise with them. In a frame whose contrast grows by more than `TemporalFilter.FADING`, w is
    divided by g^k. Networks differ in what they make of that: `udnie` draws the blocks the input
    carries (style gap +0.13 over per-frame stylisation on that opening at k = 0, +0.03 at k = 3),
    the mosaic networks draw cleaner shapes from the smoother input (`mosaic_light` -0.01 at k = 0,
    +0.04 at k = 3).

    contrast_restored: how much of the stroke contrast the blend's averaging took is given back
    (`temporal.restore_contrast`). Where a network's strokes line up from frame to frame, giving
    back half keeps its style; `wave` repaints its large curls as the scene moves, and raising the
    contrast of an average of two curl patterns that do not line up makes a third, neither the
    painting's nor steady (a slow zoom: style gap +0.125 over per-frame stylisation at 0.5, +0.057
    at 0).
    """

    fade_discount: float = 0.0
    contrast_restored: float = CONTRAST_RESTORED

    def __post_init__(self) -> None:
        if not self.fade_discount >= 0:
            raise ValueError(f"fade_discount must be at least 0 (got {self.fade_discount})")
        if not 0 <= self.contrast_restored <= 1:
            raise ValueError(f"contrast_restored must be 0 to 1 (got {self.contrast_restored})")

    @classmethod
    def recorded(cls, meta: Mapping[str, Any]) -> FilterSettings:
        """The settings a model's meta records. A value missing, not a number or out of range is the
        default: a hint, without which the filter still works."""
        values: dict[str, float] = {}
        for name in FILTER_SETTINGS:
            try:
                values[name] = float(meta[name])
                cls(**values)
            except (KeyError, TypeError, ValueError):
                values.pop(name, None)
        return cls(**values)


# What a model file may record of the filter: its meta's keys, `fast_nst.<name>` in an ONNX file.
FILTER_SETTINGS = tuple(f.name for f in dataclasses.fields(FilterSettings))


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    panel: str,
    flags: tuple[str, ...] = (),
    show_default: str | bool = True,
) -> Any:
    """A config field that is also a command-line option; `flags` replaces its --field-name."""
    metadata = {"help": help, "panel": panel, "flags": flags, "show_default": show_default}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(kw_only=True)
class LossSettings:
    """The loss settings `train` and `optimize` share (each adds its own weights and painting size)."""

    content_weight: float = setting(
        1.0, help="Weight of the content (feature) loss; raise to keep more of the photo.", panel=LOSS
    )
    style_layers: str = setting(
        ",".join(STYLE_LAYERS), help="VGG19 layers for style, optionally NAME:WEIGHT.", panel=LOSS
    )
    content_layers: str = setting(
        ",".join(CONTENT_LAYERS), help="VGG19 layer(s) for content; relu2_2 keeps more detail.", panel=LOSS
    )
    vgg_weights: str = setting(
        "caffe",
        help="Loss network weights: 'caffe' (original VGG, built in), 'torchvision' (downloaded once) "
        "or a state-dict file.",
        panel=LOSS,
    )


@dataclass(kw_only=True)
class TrainConfig(LossSettings):
    """Every setting of a run; stored in checkpoints and model files so a run can be repeated."""

    style: str = setting(help="The painting to learn, any image file.", panel=DATA)
    data: str = setting(
        help="Folder of training photos (any tree of jpg/png/webp/bmp, e.g. COCO's train2014/).", panel=DATA
    )
    out: str | None = setting(
        None, flags=("--out", "-o"), help="Model file to write at the end.", panel=OUTPUT,
        show_default="models/<style name>.pt",
    )  # fmt: skip
    run_dir: str | None = setting(
        None,
        help="Where checkpoints, previews and log.jsonl go.",
        panel=OUTPUT,
        show_default="runs/<model name>",
    )
    steps: int = setting(
        40_000, help="Optimiser steps (the paper: 40000, 2 COCO epochs at batch 4).", panel=OPTIM
    )
    epochs: float | None = setting(
        None, help="Passes over the photos instead of --steps (fractions allowed).", panel=OPTIM
    )
    batch_size: int = setting(4, help="Photos per step.", panel=OPTIM)
    image_size: int = setting(256, help="Side of the random square crops trained on, in pixels.", panel=DATA)
    lr: float = setting(
        1e-3, help="Adam's peak learning rate for batch 4; a batch of B uses lr * sqrt(B/4).", panel=OPTIM
    )
    lr_schedule: str = setting(
        "cosine",
        help="cosine: warm up, then decay to a tenth of the peak by the last step; constant: "
        "warm up, then hold the peak.",
        panel=OPTIM,
    )
    warmup: float = setting(
        0.25,
        help="Share of the run spent raising the learning rate from 0 to its peak (0 to 1); "
        "large batches need it.",
        panel=OPTIM,
    )
    style_weight: float = setting(
        4.5,
        help="Weight of the style loss; raise for stronger texture. Under --style-loss gram, the paper's "
        "scale: about 10.",
        panel=LOSS,
    )
    stability_weight: float = setting(
        0.0,
        help="Weight of the stability loss against flicker in video: the output for a slightly moved, "
        "scaled, brightened or noisier photo must be the output moved likewise (Gupta et al. 2017). "
        "Costs a second pass of the network per step, not of VGG.",
        panel=LOSS,
    )
    tv_weight: float = setting(
        10.0, help="Weight of the total-variation loss; raise against speckle noise.", panel=LOSS
    )
    style_size: int | None = setting(
        None,
        help="Resize the painting to this long side in pixels (0: as is); larger = finer strokes. "
        "By default twice --image-size, so a painting's motifs keep their size relative to the crops.",
        panel=LOSS,
        show_default="2 x --image-size",
    )
    style_loss: str = setting(
        "gap",
        help="How the style layers add up. gap: their geometric mean in units of a plain photo's "
        "distance to the painting, so every layer and every painting count alike (the balance of "
        "evaluate --metric gap); gram: Gatys' weighted sum; balanced: the sum in a photo's units.",
        panel=LOSS,
    )
    width: int = setting(
        32,
        help="Channels of the network's first layer: 32 as in the paper, 16 for 3.5x fewer multiply-adds.",
        panel=OPTIM,
    )
    residual_blocks: int = setting(
        5,
        help="Residual blocks at a quarter of the resolution: 5 as in the paper; with --width 12, 4 makes "
        "the fast network (a 1080p frame 1.5x faster on a CPU than --width 16).",
        panel=OPTIM,
    )
    init: str | None = setting(
        None,
        help="Start from a trained model's weights (a .pt file, a checkpoint or a built-in style name) "
        "instead of random ones: fine-tuned from a trained style, a new painting needs fewer steps.",
        panel=OPTIM,
    )
    seed: int = setting(
        0, help="Seed for the initial weights and the order and crops of the photos.", panel=OPTIM
    )
    device: str = setting("auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.", panel=SPEED)
    amp: str = setting(
        "auto", help="Mixed precision: auto (bf16, else fp16, on CUDA; off elsewhere), bf16, fp16 or off.",
        panel=SPEED,
    )  # fmt: skip
    channels_last: bool | None = setting(
        None, flags=("--channels-last/--no-channels-last",), help="NHWC memory layout.", panel=SPEED,
        show_default="on for CUDA",
    )  # fmt: skip
    compile: bool = setting(
        False,
        flags=("--compile",),
        help="torch.compile the network (slower start, faster steps).",
        panel=SPEED,
    )
    workers: int | None = setting(
        None, help="Data loader processes.", panel=SPEED, show_default="up to 4, one core left for training"
    )
    data_on_device: bool | None = setting(
        None,
        flags=("--data-on-device/--no-data-on-device",),
        help="Decode every photo once into the GPU's memory and crop there (no loader bottleneck "
        "at thousands of images/s).",
        panel=SPEED,
        show_default="on for CUDA when the photos take under half the free memory",
    )
    log_every: int = setting(50, help="Steps between log lines (losses, images/s).", panel=OUTPUT)
    preview_every: int = setting(500, help="Steps between preview grids of held-out photos.", panel=OUTPUT)
    checkpoint_every: int = setting(
        1000, help="Steps between checkpoints (also saved at the end and on Ctrl-C).", panel=OUTPUT
    )
    preview_count: int = 4
    tensorboard: bool = setting(
        False,
        flags=("--tensorboard",),
        help="Also log to TensorBoard in the run folder (needs tensorboard installed).",
        panel=OUTPUT,
    )

    @property
    def painting_size(self) -> int | None:
        """The painting's long side in training; None keeps it as it is."""
        return 2 * self.image_size if self.style_size is None else self.style_size or None

    @property
    def out_path(self) -> Path:
        return Path(self.out) if self.out else Path("models") / f"{Path(self.style).stem}.pt"

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir or Path("runs") / self.out_path.stem)

    def validate(self) -> None:
        for name in ("steps", "batch_size", "image_size", "log_every", "preview_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.image_size < 32:
            raise UserError(f"--image-size must be at least 32 (got {self.image_size})")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise UserError(f"--lr must be a positive number (got {self.lr})")
        if self.lr_schedule not in SCHEDULES:
            raise UserError(f"--lr-schedule {self.lr_schedule}: expected {' or '.join(SCHEDULES)}")
        if not 0 <= self.warmup < 1:
            raise UserError(f"--warmup is a share of the run, from 0 up to 1 (got {self.warmup})")
        if self.epochs is not None and self.epochs <= 0:
            raise UserError(f"--epochs must be positive (got {self.epochs})")
        if self.width < 1:
            raise UserError(f"--width must be at least 1 (got {self.width})")
        if self.residual_blocks < 0:
            raise UserError(f"--residual-blocks must be 0 or more (got {self.residual_blocks})")
        if self.style_size and self.style_size < 32:
            raise UserError(f"--style-size must be at least 32 (got {self.style_size})")


@dataclass
class OptimizeConfig(LossSettings):
    """Every setting of one optimisation. `blend` and `scales` come from the CLI's --style-blend,
    --size and --scales (`parse_blend`, `parse_scales`)."""

    content: str
    styles: list[str]
    out: str
    blend: list[float] | None = None  # one weight per style; None: equal
    scales: list[int] = field(default_factory=lambda: [512])  # long sides, coarse to fine
    iters: int = setting(500, help="Iterations per scale.", panel=OPTIM)
    optimizer: str = setting("lbfgs", help="lbfgs (best per iteration) or adam.", panel=OPTIM)
    lr: float | None = setting(
        None, help="Step size.", panel=OPTIM, show_default="1.0 for lbfgs, 0.02 for adam"
    )
    init: str = setting(
        "content", help="Start from the content photo, white noise, or the (first) style image.", panel=OPTIM
    )
    style_weight: float = setting(10.0, help="Weight of the style loss; raise for more texture.", panel=LOSS)
    tv_weight: float = setting(
        1.0, help="Weight of the total-variation loss; raise against noise.", panel=LOSS
    )
    style_scale: float = setting(
        1.0,
        help="Painting's long side relative to the image's at each scale; larger = bigger strokes.",
        panel=LOSS,
    )
    preserve_color: bool = setting(
        False, flags=("--preserve-color",), help="Keep the photo's colours (style in luminance only).",
        panel=OUTPUT,
    )  # fmt: skip
    save_every: int | None = setting(
        None, help="Also write OUT_<scale>px_<iteration> every N iterations.", panel=OUTPUT
    )
    seed: int = setting(0, help="Seed for --init noise.", panel=OPTIM)
    device: str = setting("auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.", panel=SPEED)
    amp: str = setting(
        "auto",
        help="Mixed precision for the VGG pass: auto (bf16 on CUDA for adam; off for lbfgs, whose "
        "curvature estimate needs exact gradients), bf16, fp16 or off.",
        panel=SPEED,
    )

    def validate(self) -> None:
        _check_scales(self.scales)
        if self.iters < 1:
            raise UserError(f"--iters must be at least 1 (got {self.iters})")
        if self.init not in INITS:
            raise UserError(f"--init {self.init}: expected one of {', '.join(INITS)}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"--optimizer {self.optimizer}: expected one of {', '.join(OPTIMIZERS)}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"--lr must be a positive number (got {self.lr})")
        if not self.styles:
            raise UserError("give at least one style image")
        if self.blend is not None and len(self.blend) != len(self.styles):
            raise UserError(
                f"--style-blend has {len(self.blend)} weights for {len(self.styles)} style images"
            )
        if not self.style_scale > 0:
            raise UserError(f"--style-scale must be positive (got {self.style_scale})")
        if self.save_every is not None and self.save_every < 1:
            raise UserError(f"--save-every must be at least 1 (got {self.save_every})")
        if Image.registered_extensions().get(Path(self.out).suffix.lower()) is None:
            raise UserError(f"{self.out}: unknown image extension (use .png, .jpg, .webp ...)")


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
