"""A model's quality figures: mean style_gap and content_err on the 8 shared test photos.

    python -m benchmarks.quality --model models/mosaic.onnx --style ../shared/data/styles/mosaic.jpg
    python -m benchmarks.quality --model mosaic_fast     # the painting it was trained on (mosaic.jpg)

Exactly the protocol of models/README.md: each test photo resized to a 512 px long side and
stylised there, measured against the painting at 512 px on the caffe VGG19 (fast_nst.evaluate's
"gap" metric). The same numbers as `fast-nst stylize ... --max-size 512` followed by
`fast-nst evaluate --metric gap`, in one step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fast_nst.config import STYLE_LAYERS
from fast_nst.data import find_images
from fast_nst.evaluate import EVAL_SIZE, gap_metrics, standard_encoder
from fast_nst.files import open_image, resize_long_side
from fast_nst.runtime import Stylizer

from .photos import SHARED, trained_on


def quality(model: str | Path, style: Path | None, photos: Path, out: Path | None = None) -> dict:
    """style None: the painting the model records it was trained on."""
    stylizer = Stylizer.load(model)
    style = style or trained_on(stylizer.info)
    encoder = standard_encoder()
    per_photo = {}
    for path in find_images(photos):
        content = resize_long_side(open_image(path), EVAL_SIZE)
        output = stylizer(content)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            output.save(out / f"{path.stem}.jpg", quality=92)
        figures = gap_metrics(output, content, style, encoder)
        per_photo[path.stem] = figures
    mean = {k: sum(p[k] for p in per_photo.values()) / len(per_photo) for k in ("style_gap", "content_err")}
    # Which layers lag: the mean ratio per style layer (the gap is their geometric mean).
    mean["style_gap_layers"] = {
        n: sum(p["style_gap_layers"][n] for p in per_photo.values()) / len(per_photo) for n in STYLE_LAYERS
    }
    return {"model": str(model), "style": str(style), "photos": per_photo, "mean": mean}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model file or built-in style name")
    p.add_argument("--style", type=Path, help="the painting (default: the one the model was trained on)")
    p.add_argument("--photos", type=Path, default=SHARED / "photos" / "test", help="content photos")
    p.add_argument("--out", type=Path, help="also save the stylised photos here")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args()
    report = quality(args.model, args.style, args.photos, args.out)
    for name, r in report["photos"].items():
        print(f"{name:<20} style_gap {r['style_gap']:.3f}  content_err {r['content_err']:.3f}")
    m = report["mean"]
    print(f"{'mean':<20} style_gap {m['style_gap']:.3f}  content_err {m['content_err']:.3f}")
    print("style_gap by layer: " + "  ".join(f"{n} {r:.3f}" for n, r in m["style_gap_layers"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
