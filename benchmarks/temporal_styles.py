"""The flow-guided blend on every built-in style: temporal error and style gap, per frame and
with `--temporal S`, on the clips `benchmarks.temporal` makes (issue 16).

    python -m benchmarks.temporal_styles --clips zoom,pan,chaplin

`benchmarks.temporal` measures one network on every clip; the blend's cost in style depends on the
network, so this measures every built-in on a few clips. One JSON line per clip, style and strength.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from fast_nst.evaluate import evaluate_video
from fast_nst.runtime import Stylizer
from fast_nst.video import stylize_video

from .photos import paintings
from .temporal import FILMS, made_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--styles", help="comma-separated built-in styles (default: all)")
    parser.add_argument("--clips", default="zoom,pan", help="any of zoom, pan, fade, chaplin, bunny")
    parser.add_argument("--strengths", default="0,0.9", help="--temporal values (0: per frame)")
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    args = parser.parse_args()
    painting = paintings()
    styles = args.styles.split(",") if args.styles else sorted(painting)
    with tempfile.TemporaryDirectory() as tmp:
        folder, films = Path(tmp), dict(zip(("chaplin", "bunny"), FILMS, strict=True))
        clips = {
            name: films[name] if name in films else made_clip(name, folder, args.frames)
            for name in args.clips.split(",")
        }
        for style in styles:
            stylizer = Stylizer.load(style)
            for name, clip in clips.items():
                for strength in (float(s) for s in args.strengths.split(",")):
                    out = folder / f"{name}-{style}-{strength:g}.mp4"
                    stylize_video(stylizer, clip, out, max_frames=args.frames, temporal=strength)
                    report = evaluate_video(clip, out, painting[style])
                    row = {"style": style, "clip": name, "temporal": strength}
                    row |= {k: round(report[k], 4) for k in ("temporal_error", "style_gap")}
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
