"""The default recipe on every painting: old and new defaults side by side at one small budget.

    python -m benchmarks.recipe                                   # 9 paintings x {old, new}, CPU budget
    python -m benchmarks.recipe --paintings candy,udnie --config sw5:style_weight=5 --eval test

Each painting in `../shared/data/styles` is trained with nothing but the defaults (plus the
budget: --steps, --size, --batch) on a fixed subset of the large folder's training photos, then
measured (style_gap / content_err, `fast-nst evaluate --metric gap`) on the 8 test photos and on
held-out photos of the large folder that no run and no tuning ever trained on or looked at. One
contact sheet per painting (painting, test photos, each configuration's outputs) goes to
--sheets, so the figures can be checked by eye.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from fast_nst.data import find_images
from fast_nst.files import open_image, save_image
from fast_nst.train import TrainConfig

from .photos import SHARED, held_out_sample
from .short_runs import Yardstick, main, train_quietly, training_subset

# The defaults before issue 14: constant learning rate, style layers summed in the painting's units,
# the painting at 512 px whatever the crop size.
CONFIGS: dict[str, dict[str, object]] = {
    "old": {
        "lr_schedule": "constant",
        "warmup": 0.0,
        "style_loss": "gram",
        "style_weight": 10.0,
        "style_size": 512,
    },
    "new": {},
}
SHEET_PHOTOS = ("chicago", "flowers", "golden_gate", "tubingen")
CELL = 200  # contact-sheet cell height, px


def parse_config(spec: str) -> tuple[str, dict[str, object]]:
    """'sw5:style_weight=5,lr_schedule=constant' -> ('sw5', {...}); values read as JSON, else text."""
    name, _, settings = spec.partition(":")
    if name in CONFIGS and not settings:
        return name, CONFIGS[name]
    out: dict[str, object] = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return name, out


def contact_sheet(style: Path, photos: list[Image.Image], rows: dict[str, list[Image.Image]]) -> Image.Image:
    """Painting above the photos; below, one labelled row of outputs per configuration."""

    def fit(im: Image.Image) -> Image.Image:
        return im.resize((round(im.width * CELL / im.height), CELL))

    painting = fit(open_image(style))
    strips = [[painting, *map(fit, photos)]]
    for name, outputs in rows.items():
        tag = Image.new("RGB", painting.size, "white")
        ImageDraw.Draw(tag).text((10, CELL // 2 - 10), name, fill="black", font_size=20)
        strips.append([tag, *map(fit, outputs)])
    sheet = Image.new("RGB", (max(sum(c.width for c in s) for s in strips), CELL * len(strips)), "white")
    for y, strip in enumerate(strips):
        x = 0
        for cell in strip:
            sheet.paste(cell, (x, y * CELL))
            x += cell.width
    return sheet


def run(args: argparse.Namespace) -> dict:
    configs = dict(parse_config(c) for c in args.config or CONFIGS)
    paintings = (
        [SHARED / "styles" / f"{p}.jpg" for p in args.paintings.split(",")]
        if args.paintings
        else (find_images(SHARED / "styles"))
    )
    sets = {"test": find_images(SHARED / "photos" / "test"), "held_out": held_out_sample(args.held_out)}
    sets = {k: v for k, v in sets.items() if args.eval in (k, "both")}
    report: dict = {"budget": {"steps": args.steps, "size": args.size, "batch": args.batch}, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data = training_subset(Path(tmp) / "photos", args.every)
        for painting in paintings:
            yardsticks = {k: Yardstick(v, painting, args.eval_size) for k, v in sets.items()}
            rows = {}
            for name, overrides in configs.items():
                cfg = TrainConfig(
                    style=str(painting),
                    data=str(data),
                    out=f"{tmp}/{painting.stem}_{name}.pt",
                    run_dir=f"{tmp}/run_{painting.stem}_{name}",
                    steps=args.steps,
                    batch_size=args.batch,
                    image_size=args.size,
                    preview_count=0,
                    checkpoint_every=10**9,
                    log_every=10**9,
                    **overrides,  # type: ignore[arg-type]
                )
                model, seconds = train_quietly(cfg)
                result: dict = {"seconds": round(seconds, 1)}
                line = f"{painting.stem:<22} {name:<8}"
                for set_name, yardstick in yardsticks.items():
                    mean, outputs = yardstick.measure(model)
                    result[set_name] = mean
                    line += f"  {set_name} {mean['style_gap']:.3f} / {mean['content_err']:.3f}"
                    if set_name == "test":
                        named = zip(outputs, yardstick.names, strict=True)
                        rows[name] = [o for o, n in named if n in SHEET_PHOTOS]
                report["results"].setdefault(painting.stem, {})[name] = result
                print(f"{line}  ({seconds:.0f} s)", flush=True)
            if args.sheets and "test" in yardsticks:
                photos = [
                    p
                    for p, n in zip(yardsticks["test"].photos, yardsticks["test"].names, strict=True)
                    if n in SHEET_PHOTOS
                ]
                args.sheets.mkdir(parents=True, exist_ok=True)
                save_image(contact_sheet(painting, photos, rows), args.sheets / f"{painting.stem}.jpg")
    return report


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paintings", help="comma-separated painting names (default: every shared painting)")
    p.add_argument(
        "--config",
        action="append",
        help="NAME or NAME:key=value,... (TrainConfig fields over the defaults); repeatable. "
        "Default: old and new",
    )
    p.add_argument("--steps", type=int, default=150, help="training steps per run")
    p.add_argument("--batch", type=int, default=4, help="batch size")
    p.add_argument("--eval", choices=("test", "held_out", "both"), default="both", help="photos measured")
    p.add_argument("--sheets", type=Path, help="write one contact sheet per painting here")


if __name__ == "__main__":
    main(__doc__, arguments, run)
