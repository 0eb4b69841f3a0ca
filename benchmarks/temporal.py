"""Flicker: temporal error and style gap of per-frame stylisation against the steadied kinds, and
what each costs in frames/s on this machine (issue 16).

    python -m benchmarks.temporal --model mosaic_light --stable-model runs/stab.pt

Clips: the two shared videos (their first --frames frames) and clips this script makes from
held-out photos of the large folder, so the figures do not rest on two films: a slow pan and a
slow zoom, 640x360, with sensor-like noise that changes every frame, encoded like our outputs.
Each clip is stylised per frame ("plain"), with `--temporal S` for each S, and (with
--stable-model, a network fine-tuned with --stability-weight) both ways again. Speed: the whole
`stylize_video` path (decode, stylise, steady, encode) on the 640x360 film, median of --repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from fast_nst.evaluate import evaluate_video
from fast_nst.runtime import Stylizer
from fast_nst.video import stylize_video

from .photos import SHARED, held_out_sample
from .run import machine

FILMS = [SHARED / "video" / "chaplin.mp4", SHARED / "video" / "big_buck_bunny_0_30.webm"]
SIZE = (640, 360)


def camera_clip(photo: Path, out: Path, motion: str, frames: int, seed: int) -> Path:
    """A slow pan or zoom over a photo, with fresh noise (std 3 levels) in every frame."""
    image = Image.open(photo).convert("RGB")
    scale = max(SIZE[0] * 1.5 / image.width, SIZE[1] * 1.5 / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(seed)
    with av.open(str(out), "w") as sink:
        stream = sink.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.options = {"crf": "18"}
        for t in range(frames):
            if motion == "pan":  # 1.5 px per frame to the right
                box = (1.5 * t, 20, 1.5 * t + SIZE[0], 20 + SIZE[1])
            else:  # zoom in by 0.4% per frame about the centre
                cx, cy, k = image.width / 2, image.height / 2, 0.7 * 1.004**-t
                box = (cx - k * SIZE[0], cy - k * SIZE[1], cx + k * SIZE[0], cy + k * SIZE[1])
            frame = np.asarray(image.resize(SIZE, Image.Resampling.BICUBIC, box=box), np.float32)
            frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
            sink.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        sink.mux(stream.encode(None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mosaic_light", help="the style to stylise with")
    parser.add_argument("--stable-model", help="the same style fine-tuned with --stability-weight")
    parser.add_argument("--style", default=str(SHARED / "styles" / "mosaic.jpg"), help="its painting")
    parser.add_argument("--strengths", default="0.5,0.8", help="--temporal values to measure")
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs for frames/s")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    strengths = [float(s) for s in args.strengths.split(",")]
    models = {"": args.model} | ({"stable ": args.stable_model} if args.stable_model else {})
    results: dict = {"machine": machine(), "model": args.model, "stable_model": args.stable_model}
    results["clips"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos = held_out_sample(2)
        clips = [
            *(f for f in FILMS if f.is_file()),
            camera_clip(photos[0], folder / "pan.mp4", "pan", args.frames, 0),
            camera_clip(photos[1], folder / "zoom.mp4", "zoom", args.frames, 1),
        ]
        for clip in clips:
            rows = results["clips"][clip.name] = {}
            for prefix, model in models.items():
                stylizer = Stylizer.load(model)
                for s in [0.0, *strengths]:
                    name = f"{prefix}{'plain' if s == 0 else f'--temporal {s:g}'}"
                    out = folder / f"{clip.stem}-{len(rows)}.mp4"
                    stylize_video(stylizer, clip, out, max_frames=args.frames, temporal=s)
                    report = evaluate_video(clip, out, Path(args.style))
                    rows[name] = {k: report[k] for k in ("temporal_error", "style_gap", "content_err")}
                    print(clip.name, name, {k: round(v, 3) for k, v in rows[name].items()}, flush=True)
        film, stylizer = FILMS[0], Stylizer.load(args.model)
        results["frames_per_s_640x360"] = speed = {}
        for s in [0.0, *strengths]:
            times = []
            for i in range(args.repeats + 1):  # the first run warms up
                start = time.perf_counter()
                out = folder / f"speed-{i}.mp4"
                stylize_video(stylizer, film, out, overwrite=True, max_frames=args.frames, temporal=s)
                times.append(time.perf_counter() - start)
            speed[f"--temporal {s:g}"] = args.frames / statistics.median(times[1:])
            print("frames/s", s, round(speed[f"--temporal {s:g}"], 2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
