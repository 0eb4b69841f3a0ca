"""Would a style weight calibrated on the gradients' ratio suit each painting? (issue 14, item 3)

    python -m benchmarks.gradient_balance --json benchmarks/figures/recipe/gradient_balance.json

The classic way to balance two losses without a hand-set weight is to make them pull equally hard
at the start: scale the style term so that its gradient at the network's output has a fixed ratio
to the content term's. For each painting this measures the style term's gradient (the default
loss, in a photo's units, at the recipe benchmark's 128 px crops and 256 px painting) at two
points a run starts from: the photos themselves and the untrained network's output for them (the
content term's gradient there is the same for every painting). The weight it would give each
painting is 4.5 (the default) times the geometric mean of the gradients over the paintings divided
by the painting's own: the same weights on average, shared out by the ratio.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from fast_nst.config import TrainConfig
from fast_nst.data import find_images, spaced_photos
from fast_nst.files import load_image_tensor
from fast_nst.losses import PerceptualLoss, parse_layer_weights
from fast_nst.train import BALANCE_PHOTOS
from fast_nst.transformer import TransformerNet
from fast_nst.vgg import VGG19Encoder

from .photos import SHARED, large_split

SIZE = 128


def style_gradient(loss_fn: PerceptualLoss, image: torch.Tensor) -> float:
    """Norm of the style loss's gradient with respect to the image (style layers only: no content pass)."""
    image = image.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn.style(loss_fn.encoder(image, loss_fn.style.layers)), image)
    return grad.norm().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    cfg = TrainConfig(style="", data="", image_size=SIZE)
    style_layers = parse_layer_weights(cfg.style_layers)
    content_layers = list(parse_layer_weights(cfg.content_layers))
    encoder = VGG19Encoder([*style_layers, *content_layers], cfg.vgg_weights)
    training = large_split()[0][::4]  # the recipe benchmark's training photos
    _, units = spaced_photos(training, BALANCE_PHOTOS, SIZE)  # as the trainer picks them
    _, photos = spaced_photos(training[1::2], 8, SIZE)
    torch.manual_seed(cfg.seed)
    with torch.no_grad():
        untrained = TransformerNet(cfg.width, cfg.residual_blocks)(photos)

    rows: dict[str, dict[str, float]] = {}
    for painting in find_images(SHARED / "styles"):
        loss_fn = PerceptualLoss(
            encoder, [load_image_tensor(painting, cfg.painting_size)], style_layers, content_layers,
            1.0, 1.0, 0.0, style_loss=cfg.style_loss,
        )  # fmt: skip
        loss_fn.balance_style_layers(units)
        rows[painting.stem] = {"photo": style_gradient(loss_fn, photos)}
        rows[painting.stem]["untrained"] = style_gradient(loss_fn, untrained)
    for point in ("photo", "untrained"):
        mean = math.exp(sum(math.log(r[point]) for r in rows.values()) / len(rows))
        for r in rows.values():
            r[f"weight_{point}"] = cfg.style_weight * mean / r[point]
    print(f"{'painting':24s} {'|grad| photo':>12s} {'weight':>7s} {'|grad| untrained':>17s} {'weight':>7s}")
    for name, r in rows.items():
        figures = (r["photo"], r["weight_photo"], r["untrained"], r["weight_untrained"])
        print(f"{name:24s} {figures[0]:12.4f} {figures[1]:7.1f} {figures[2]:17.4f} {figures[3]:7.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
