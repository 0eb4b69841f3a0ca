"""Gatys optimisation vs a feed-forward model on the same loss (Johnson et al. 2016, Fig. 5).

For each test photo: the total loss and wall time of L-BFGS after 50, 100, 200 and 500
iterations, and of one forward pass of a trained model, both measured with the same
PerceptualLoss, plus the iteration count at which the optimisation first matches the model.
Prints a Markdown table for BENCHMARKS.md; --json writes the raw figures.

    python -m benchmarks.gatys_vs_feedforward --model models/mosaic.pt --style mosaic.jpg
    python -m benchmarks.gatys_vs_feedforward --model models/mosaic.pt --size 256 --limit 2  # CPU
    python -m benchmarks.gatys_vs_feedforward --quick      # CI smoke run: tiny, random model
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fast_nst.config import CONTENT_LAYERS, STYLE_LAYERS, OptimizeConfig
from fast_nst.device import pick_device
from fast_nst.files import load_image_tensor
from fast_nst.losses import PerceptualLoss
from fast_nst.optimize import iterate
from fast_nst.transformer import TransformerNet, load_model
from fast_nst.vgg import VGG19Encoder

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULTS = OptimizeConfig(content="", styles=[], out="")  # its loss weights, when no model says otherwise


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def gatys_curve(loss_fn: PerceptualLoss, content: torch.Tensor, checkpoints: list[int]) -> dict[int, dict]:
    """{iterations: {loss, seconds}} for L-BFGS from the photo, as `fast-nst optimize` runs it."""
    device = content.device
    steps = iterate(loss_fn, loss_fn.content_targets(content), content, "lbfgs", 1.0, None)
    curve, finished_at = {}, {}
    start = time.perf_counter()
    # Step k's terms measure the image that k - 1 iterations made.
    for k in range(1, max(checkpoints) + 2):
        _, terms = next(steps)
        if k - 1 in checkpoints:
            curve[k - 1] = {"loss": terms.total.item(), "seconds": finished_at[k - 1]}
        _sync(device)
        finished_at[k] = time.perf_counter() - start
    return curve


@torch.no_grad()
def feedforward(loss_fn: PerceptualLoss, net: torch.nn.Module, content: torch.Tensor) -> dict:
    """Loss of the model's output and the best of three timed forward passes (after a warm-up)."""
    net(content)
    times = []
    for _ in range(3):
        _sync(content.device)
        start = time.perf_counter()
        out = net(content)
        _sync(content.device)
        times.append(time.perf_counter() - start)
    return {"loss": loss_fn(out, loss_fn.content_targets(content)).total.item(), "seconds": min(times)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=SHARED / "photos" / "test")
    parser.add_argument("--style", type=Path, default=SHARED / "styles" / "mosaic.jpg")
    parser.add_argument("--model", type=Path, help="trained .pt; without it (--quick only) a random net")
    parser.add_argument("--size", type=int, default=512, help="long side of the photos")
    parser.add_argument("--iters", default="50,100,200,500", help="L-BFGS iteration counts to report")
    parser.add_argument("--limit", type=int, help="only the first N photos (a CPU run takes minutes each)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 photo, 64 px, 2 and 4 iterations")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.iters = 64, "2,4"
    elif args.model is None:
        parser.error("--model is required (the trained feed-forward model to compare with)")
    checkpoints = [int(s) for s in args.iters.split(",")]
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = photos[: 1 if args.quick else args.limit]

    device = pick_device(args.device)
    encoder = VGG19Encoder([*STYLE_LAYERS, *CONTENT_LAYERS]).to(device)
    # The objective the model was trained on, so both methods minimise the same thing.
    net, record = load_model(args.model) if args.model else (TransformerNet(width=8), {"meta": {}})
    net = net.to(device)
    trained = record["meta"].get("config", {})
    weights = tuple(
        trained.get(k, getattr(DEFAULTS, k)) for k in ("style_weight", "content_weight", "tv_weight")
    )
    rows = []
    for photo in photos:
        content = load_image_tensor(photo, args.size).to(device)
        style = load_image_tensor(args.style, args.size).to(device)
        loss_fn = PerceptualLoss(encoder, [style], dict.fromkeys(STYLE_LAYERS, 1.0), CONTENT_LAYERS, *weights)
        ff = feedforward(loss_fn, net, content)
        curve = gatys_curve(loss_fn, content, checkpoints)
        match = next((n for n in checkpoints if curve[n]["loss"] <= ff["loss"]), None)
        rows.append({"photo": photo.name, "feedforward": ff, "gatys": curve, "matches_at": match})

    print(f"Loss weights style/content/tv {weights}, {args.size} px, {device}; loss (seconds)\n")
    print("| photo | feed-forward | " + " | ".join(f"L-BFGS {n}" for n in checkpoints) + " | matched at |")
    print("|---" * (len(checkpoints) + 3) + "|")
    for r in rows:
        cells = [f"{r['gatys'][n]['loss']:.3f} ({r['gatys'][n]['seconds']:.1f})" for n in checkpoints]
        ff = f"{r['feedforward']['loss']:.3f} ({r['feedforward']['seconds']:.3f})"
        print(f"| {r['photo']} | {ff} | " + " | ".join(cells) + f" | {r['matches_at'] or '-'} |")
    if args.json:
        args.json.write_text(json.dumps({"weights": weights, "size": args.size, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
