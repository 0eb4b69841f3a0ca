"""Short training runs measured on photos they never saw: what the recipe and batch benchmarks share.

Each run trains on a fixed subset of the large folder's training photos (`benchmarks.photos`) and
is measured with the "gap" figures of `fast-nst evaluate` (style_gap, content_err) on photos
outside it. Photo and painting features are encoded once and reused for every model.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image
from rich.console import Console

from fast_nst.evaluate import Features, encode, gap_from_features, standard_encoder
from fast_nst.files import open_image, resize_long_side
from fast_nst.runtime import Stylizer
from fast_nst.train import TrainConfig, train

from .photos import large_split


def main(doc: str, add_arguments: Callable[[argparse.ArgumentParser], None], run: Callable) -> None:
    """A short-run benchmark's command line: its own options, then those all of them share."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    add_arguments(p)
    p.add_argument("--size", type=int, default=128, help="training crop side")
    p.add_argument("--every", type=int, default=4, help="train on every Nth training photo of the large set")
    p.add_argument("--held-out", type=int, default=24, help="held-out photos of the large folder measured")
    p.add_argument("--eval-size", type=int, default=256, help="long side photos are stylised and measured at")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args()
    report = run(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def training_subset(folder: Path, every: int) -> Path:
    """Every `every`th training photo of the large folder, linked (not copied) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in large_split()[0][::every]:
        (folder / f"{path.parent.name}_{path.name}").symlink_to(path.resolve())
    return folder


def train_quietly(cfg: TrainConfig) -> tuple[Path, float]:
    """Train without progress output; (model file, seconds)."""
    start = time.perf_counter()
    model = train(cfg, console=Console(file=io.StringIO()))
    return model, time.perf_counter() - start


class Yardstick:
    """Photos and one painting, encoded once at `size`, against which models are measured."""

    def __init__(self, photos: Sequence[Path], style: Path, size: int, device: str = "cpu") -> None:
        self.encoder = standard_encoder(device)
        self.photos = [resize_long_side(open_image(p), size) for p in photos]
        self.names = [p.stem for p in photos]
        self.photo_features = [encode(self.encoder, p) for p in self.photos]
        self.style_features: Features = encode(self.encoder, resize_long_side(open_image(style), size))

    def measure(self, model: Path | str) -> tuple[dict, list[Image.Image]]:
        """Mean style_gap and content_err over the photos, and the model's outputs."""
        stylizer = Stylizer.load(model, device="cpu")
        outputs, figures = [], []
        for photo, features in zip(self.photos, self.photo_features, strict=True):
            out = stylizer(photo)
            out = out if out.size == photo.size else out.resize(photo.size, Image.Resampling.LANCZOS)
            outputs.append(out)
            figures.append(gap_from_features(encode(self.encoder, out), features, self.style_features))
        mean = {k: sum(f[k] for f in figures) / len(figures) for k in ("style_gap", "content_err")}
        return mean, outputs
