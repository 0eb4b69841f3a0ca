"""Which of the shared photos train and which are held out, decided once for every benchmark;
and which shared painting each built-in style was trained on.

`../shared/data/photos/large` is split by position in its sorted listing: every tenth photo is held
out and never trained on (not by the benchmarks, not by the GPU run's packed set), so quality can
be reported on photos no model and no tuning has seen. The 8 test photos are never trained on either.
"""

from __future__ import annotations

from pathlib import Path

from fast_nst.data import find_images
from fast_nst.files import torch_load
from fast_nst.styles import builtin_styles

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LARGE = SHARED / "photos" / "large"
HELD_OUT_EVERY = 10


def large_split(folder: Path = LARGE) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos) of the large folder."""
    files = find_images(folder)
    held = set(files[::HELD_OUT_EVERY])
    return [f for f in files if f not in held], sorted(held)


def held_out_sample(count: int, folder: Path = LARGE) -> list[Path]:
    """`count` held-out photos spread evenly over the folder's sources (its subfolders)."""
    held = large_split(folder)[1]
    return [held[int(i * len(held) / count)] for i in range(count)]


def trained_on(meta: dict) -> Path:
    """The shared painting a model was trained on, from its record's meta (a model's name need not
    be its painting's: mosaic_light and mosaic_fast are mosaic's)."""
    style = meta.get("config", {}).get("style")
    if not style:
        raise SystemExit("the model does not record its painting: pass --style")
    return SHARED / "styles" / Path(style).name


def paintings() -> dict[str, Path]:
    """Built-in style name -> the shared painting its model was trained on."""
    records = {name: torch_load(style.pt, "model file") for name, style in builtin_styles().items()}
    return {name: trained_on(r["meta"]) for name, r in records.items()}
