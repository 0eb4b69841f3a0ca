"""Perceptual losses of Gatys et al.: Gram-matrix style loss, feature content loss, total variation.

Each term is a relative squared error, so the logged numbers read the same whatever the layer,
image size or VGG weights: a style loss of 0.5 means the Gram matrices are off by about 70% of
their own norm, a content loss of 1.0 means the features differ as much as they are large.
Grams and losses are computed in float32 even under autocast: Gram sums overflow in fp16.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import STYLE_LOSSES
from .errors import UserError
from .vgg import VGG19Encoder


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix normalised by C*H*W, in float32: (B, C, H, W) -> (B, C, C)."""
    b, c, h, w = features.shape
    f = features.float().reshape(b, c, h * w)
    with torch.autocast(f.device.type, enabled=False):
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def relative_sq_error(x: Tensor, target: Tensor) -> Tensor:
    """||x - target||^2 / ||target||^2 per sample, averaged over the batch (float32)."""
    x, target = x.float(), target.float()
    dims = tuple(range(1, x.dim()))
    err = (x - target).pow(2).sum(dims)
    return (err / target.pow(2).sum(dims).clamp_min(1e-12)).mean()


def tv_loss(image: Tensor) -> Tensor:
    """Mean squared difference between neighbouring pixels; discourages high-frequency noise."""
    image = image.float()
    dh = (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean()
    dw = (image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
    return dh + dw


@dataclass
class Shake:
    """A slight random change of each photo of a batch, as between two frames of a steady shot: a
    sub-pixel move, a little scaling and rotation, a brightness change and sensor noise.

    The stability loss (Gupta et al. 2017, "Characterizing and Improving Stability in Neural Style
    Transfer") asks the network to commute with it: the output for the shaken photo should be the
    output for the photo, moved the same way, not a repainting. No optical flow is needed.
    """

    grid: Tensor  # (N, H, W, 2) sampling grid of the move
    valid: Tensor  # (N, 1, H, W) 1 where the moved image has content from inside the original
    gain: Tensor  # (N, 1, 1, 1)
    noise: Tensor  # (N, 3, H, W)

    SHIFT, SCALE, ROTATE, BRIGHTNESS, NOISE = 1.0, 0.02, 1.0, 0.05, 0.02  # px, share, degrees, share, std

    @classmethod
    def random(cls, x: Tensor) -> Shake:
        """Drawn from torch's global generator on the CPU, so a run is the same on any device."""
        n, _, h, w = x.shape
        spread = lambda *shape: torch.rand(*shape) * 2 - 1  # noqa: E731
        angle, scale = spread(n) * math.radians(cls.ROTATE), 1 + spread(n) * cls.SCALE
        shift = spread(n, 2) * cls.SHIFT * 2 / torch.tensor([w, h])  # grid units span 2 per side
        theta = torch.stack(
            [
                torch.stack([scale * angle.cos(), -scale * angle.sin(), shift[:, 0]], 1),
                torch.stack([scale * angle.sin(), scale * angle.cos(), shift[:, 1]], 1),
            ],
            1,
        ).to(x.device, x.dtype)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        valid = F.grid_sample(x.new_ones(n, 1, h, w), grid, align_corners=False) > 0.999
        gain = (1 + spread(n, 1, 1, 1) * cls.BRIGHTNESS).to(x.device, x.dtype)
        noise = (torch.randn(n, 3, h, w) * cls.NOISE).to(x.device, x.dtype)
        return cls(grid, valid.to(x.dtype), gain, noise)

    def move(self, image: Tensor) -> Tensor:
        return F.grid_sample(image, self.grid.to(image.dtype), padding_mode="reflection", align_corners=False)

    def photo(self, x: Tensor) -> Tensor:
        """The shaken photo."""
        return (self.move(x) * self.gain + self.noise).clamp(0, 1)

    def error(self, out_shaken: Tensor, out: Tensor) -> Tensor:
        """Mean squared difference, in [0, 1] units, between the output for the shaken photo and the
        output moved: what flickers from frame to frame. Pixels moved in from outside are left out."""
        diff = (out_shaken.float() - self.move(out).float()).pow(2) * self.valid
        return diff.sum() / (self.valid.sum() * out.shape[1]).clamp_min(1)


@dataclass
class LossTerms:
    """Weighted loss terms of one evaluation; `total` is what gets minimised."""

    total: Tensor
    style: Tensor
    content: Tensor
    tv: Tensor

    def detached(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in vars(self).items()}


class StyleLoss(nn.Module):
    """Distance of an image's Grams to fixed target Grams, one weight per layer.

    Gatys' and Johnson's loss is the weighted mean of the layers' relative Gram errors. Each layer
    then weighs what the painting happens to give it: for udnie a photo's relu1_1 (colour) error
    is ~5x its relu2_1 error, so a network learns the palette and leaves the brushwork, and every
    painting needed its own hand-set layer weights. `geometric` takes their weighted geometric
    mean instead, the way `fast-nst evaluate --metric gap` combines layers: its gradient
    weighs each layer by 1 / its current error, so halving any layer's error counts the same, and
    the layer furthest behind in relative terms is not drowned by the one with the largest numbers.
    In units of a photo's error (`PerceptualLoss.balance_style_layers`) it reads as the squared
    style_gap: 1 for a plain photo, 0 for the painting's statistics.

    Several style images blend by a weighted mean of their Grams, which equals (up to a constant)
    the weighted sum of the separate losses and costs one comparison instead of many.
    """

    def __init__(
        self,
        targets: Mapping[str, Tensor],
        layer_weights: Mapping[str, float],
        geometric: bool = False,
        batch_mean: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.layers = list(targets)
        self.layer_weights = {n: float(layer_weights[n]) for n in self.layers}
        self.geometric = geometric
        # When a batch is split over processes (`distributed.World.batch_mean`): the geometric mean
        # is not a mean over images, so it combines the whole batch's per-layer errors.
        self.batch_mean = batch_mean
        for n, g in targets.items():
            self.register_buffer(f"target_{n}", g.float())
            self.register_buffer(f"scale_{n}", torch.ones((), device=g.device))

    def target(self, layer: str) -> Tensor:
        return getattr(self, f"target_{layer}")

    def per_layer(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for n in self.layers:
            g, t = gram_matrix(features[n]), self.target(n)
            out[n] = relative_sq_error(g, t.expand_as(g)) / getattr(self, f"scale_{n}")
        return out

    def forward(self, features: Mapping[str, Tensor]) -> Tensor:
        per_layer, w = self.per_layer(features), self.layer_weights
        if self.geometric:
            if self.batch_mean is not None:
                per_layer = {n: self.batch_mean(v) for n, v in per_layer.items()}
            logs = sum(w[n] * v.clamp_min(1e-12).log() for n, v in per_layer.items())
            return torch.exp(logs / sum(w.values()))
        return sum(w[n] * v for n, v in per_layer.items()) / sum(w.values())


class ContentLoss(nn.Module):
    """Relative squared feature error against the content image's features."""

    def __init__(self, layers: Sequence[str]) -> None:
        super().__init__()
        self.layers = list(layers)

    def forward(self, features: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor:
        return sum(relative_sq_error(features[n], targets[n]) for n in self.layers) / len(self.layers)


def parse_layer_weights(spec: str) -> dict[str, float]:
    """'relu1_1,relu2_1:0.5' -> {'relu1_1': 1.0, 'relu2_1': 0.5}."""
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, weight = item.partition(":")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError:
            raise UserError(f"bad layer weight in '{item}' (expected NAME or NAME:WEIGHT)") from None
        if out[name] < 0:
            raise UserError(f"layer weight for {name} must not be negative")
    if not out:
        raise UserError("no layers given")
    return out


class PerceptualLoss(nn.Module):
    """Everything a style-transfer objective needs: encoder, style targets, content and TV terms.

    The style targets are computed once, here; per step only the output is encoded (and the
    content batch, up to the deepest content layer only, by `content_targets`). `style_loss` is
    one of STYLE_LOSSES; the two in a photo's units need `balance_style_layers` before training.
    """

    def __init__(
        self,
        encoder: VGG19Encoder,
        styles: Sequence[Tensor],
        style_layers: Mapping[str, float],
        content_layers: Sequence[str],
        style_weight: float,
        content_weight: float,
        tv_weight: float,
        blend: Sequence[float] | None = None,
        style_loss: str = "gram",
        batch_mean: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        for name, w in (("style", style_weight), ("content", content_weight), ("tv", tv_weight)):
            if w < 0:
                raise UserError(f"--{name}-weight must not be negative (got {w})")
        if style_loss not in STYLE_LOSSES:
            raise UserError(f"--style-loss {style_loss}: expected one of {', '.join(STYLE_LOSSES)}")
        blend = list(blend) if blend is not None else [1.0] * len(styles)
        if len(blend) != len(styles) or sum(blend) <= 0 or min(blend) < 0:
            raise UserError("style blend needs one non-negative weight per style image, not all 0")
        self.encoder = encoder
        self.style_loss = style_loss
        self.weights = (style_weight, content_weight, tv_weight)
        with torch.no_grad():
            grams: dict[str, Tensor] = {n: 0 for n in style_layers}  # type: ignore[misc]
            for image, w in zip(styles, blend, strict=True):
                feats = encoder(image, style_layers)
                for n in style_layers:
                    grams[n] = grams[n] + gram_matrix(feats[n]).mean(0, keepdim=True) * (w / sum(blend))
        self.style = StyleLoss(grams, style_layers, geometric=style_loss == "gap", batch_mean=batch_mean)
        self.content = ContentLoss(content_layers)

    @torch.no_grad()
    def balance_style_layers(self, photos: Tensor) -> dict[str, float]:
        """Measure each style layer from now on in units of how far plain photos are from the painting.

        Divided by the photos' own error, every layer's loss reads as a squared style gap (1 = no
        closer to the painting than a photo). Under the "gap" loss that only sets the style term's
        overall scale, not the layers' balance, and it is what makes one --style-weight fit every
        painting: the style term asks for a share of the way from photo to painting, however far
        that painting is from photos. Returns the photos' per-layer error before balancing.
        """
        measured = self.style.per_layer(self.encoder(photos, self.style.layers))
        for n, err in measured.items():
            getattr(self.style, f"scale_{n}").mul_(err)
        return {n: err.item() for n, err in measured.items()}

    @torch.no_grad()
    def content_targets(self, content: Tensor) -> dict[str, Tensor]:
        return self.encoder(content, self.content.layers)

    def forward(self, image: Tensor, content_targets: Mapping[str, Tensor]) -> LossTerms:
        feats = self.encoder(image, self.style.layers + self.content.layers)
        sw, cw, tw = self.weights
        style = sw * self.style(feats)
        content = cw * self.content(feats, content_targets)
        tv = tw * tv_loss(image)
        return LossTerms(total=style + content + tv, style=style, content=content, tv=tv)
