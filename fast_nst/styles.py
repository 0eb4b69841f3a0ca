"""The built-in styles: trained models shipped inside the package, found by name.

The models live in the repository's `models/` folder, which the build installs as the
`fast_nst.models` package (see pyproject.toml), so a regular `pip install` carries them and no
download is ever needed. `models/styles.json` describes each one (painting, credit, licence,
training settings, quality figures); `models/README.md` is its human-readable model card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .errors import UserError


@dataclass(frozen=True)
class BuiltinStyle:
    name: str
    painting: str
    credit: str
    licence: str
    folder: Path
    quality: dict[str, float] = field(default_factory=dict)

    @property
    def pt(self) -> Path:
        """The one file a style ships as: fp16 weights (3.4 MB). On a CPU the runtime exports it
        to ONNX once, on first use, and caches that (`runtime.cached_onnx`)."""
        return self.folder / f"{self.name}.pt"


def models_folder() -> Path:
    """Installed, the models are the `fast_nst.models` package. A source checkout run without an
    install (the GPU machine runs tools/gpu so: PYTHONPATH=checkout) has no such package, only the
    folder it is built from."""
    try:
        return Path(str(resources.files("fast_nst.models")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "models"


def builtin_styles() -> dict[str, BuiltinStyle]:
    """Name -> style, for every style whose model files are present."""
    folder = models_folder()
    index = folder / "styles.json"
    if not index.is_file():
        return {}
    entries = json.loads(index.read_text())
    styles = {
        name: BuiltinStyle(
            name,
            e["painting"],
            e["credit"],
            e["licence"],
            folder,
            e.get("quality", {}),
        )
        for name, e in entries.items()
    }
    return {n: s for n, s in styles.items() if s.pt.is_file()}


def builtin_style(name: str) -> BuiltinStyle:
    styles = builtin_styles()
    if name not in styles:
        listing = ", ".join(sorted(styles)) or "none installed"
        raise UserError(f"{name}: no such built-in style (built-in styles: {listing})")
    return styles[name]


def looks_like_a_name(ref: str | Path) -> bool:
    """A bare word (no folder, no extension) is a style name; anything else is a path."""
    text = str(ref)
    return "/" not in text and "\\" not in text and "." not in text


def contact_sheet(original: Image.Image, stylized: dict[str, Image.Image], columns: int = 4) -> Image.Image:
    """The original and each stylised version side by side, each labelled with its name."""
    tiles = {"original": original.convert("RGB"), **{k: v.convert("RGB") for k, v in stylized.items()}}
    w, h = original.size
    label = max(14, h // 16)
    font = ImageFont.load_default(size=label * 3 // 4)
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w, rows * (h + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, tile) in enumerate(tiles.items()):
        x, y = (i % columns) * w, (i // columns) * (h + label)
        sheet.paste(tile, (x, y + label))
        draw.text((x + label // 4, y + label // 8), name, fill="black", font=font)
    return sheet


def resolve_model(ref: str | Path) -> Path:
    """Turn what the user typed for a model (a file, or a built-in style's name) into a file path."""
    path = Path(ref)
    if path.is_file():
        return path
    if looks_like_a_name(ref):
        return builtin_style(str(ref)).pt
    raise UserError(f"{path}: no such model file")
