"""Flicker: temporal error and style gap of per-frame stylisation against the steadied kinds, and
what each costs in frames/s on this machine (issue 16).

    python -m benchmarks.temporal --model mosaic_light --stable-model runs/stab.pt

Clips: the two shared videos (their first --frames frames, or as many from each --film-start
second) and clips this script makes from held-out photos of the large folder, so the figures do
not rest on two films: a slow pan, a slow zoom and a fade-in from black, 640x360, with
sensor-like noise that changes every frame, encoded like our outputs.
Each clip is stylised per frame ("plain"), with `--temporal S` for each S, and (with
--stable-model, a network fine-tuned with --stability-weight) both ways again. Speed: the whole
`stylize_video` path (decode, stylise, steady, encode) at 640x360 on the Chaplin film (a third of
its frames are repeats, which the filter does not stylise again) and on the pan (none), median of
--repeats.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import numpy as np
from PIL import Image

from fast_nst.config import TEMPORAL
from fast_nst.evaluate import evaluate_video
from fast_nst.runtime import Stylizer
from fast_nst.temporal import FlowEstimator, TemporalFilter, block_difference, grey, warp_difference
from fast_nst.video import frame_count, read_frames, stylize_video

from .inference import interleaved_seconds
from .photos import SHARED, held_out_sample
from .run import machine

FILMS = [SHARED / "video" / "chaplin.mp4", SHARED / "video" / "big_buck_bunny_0_30.webm"]
SIZE = (640, 360)


def write_clip(frames: Iterable[np.ndarray], out: Path, rate: Fraction | int) -> Path:
    """Frames (H, W, 3 uint8 RGB) into an H.264 file at near-lossless quality, like our outputs."""
    frames = iter(frames)
    first = next(frames)
    with av.open(str(out), "w") as sink:
        stream = sink.add_stream("libx264", rate=rate)
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "18"}
        stream.height, stream.width = first.shape[:2]
        for frame in itertools.chain([first], frames):
            sink.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        sink.mux(stream.encode(None))
    return out


def camera_clip(photo: Path, out: Path, motion: str, frames: int, seed: int) -> Path:
    """A slow pan or zoom over a photo, or a fade-in from black on it, with fresh noise (std 3
    levels) in every frame."""
    image = Image.open(photo).convert("RGB")
    scale = max(SIZE[0] * 1.5 / image.width, SIZE[1] * 1.5 / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(seed)

    def frame(t: int) -> np.ndarray:
        if motion == "pan":  # 1.5 px per frame to the right
            box = (1.5 * t, 20, 1.5 * t + SIZE[0], 20 + SIZE[1])
        else:  # zoom in by 0.4% per frame about the centre (the fade: the zoom's first frame)
            cx, cy, k = image.width / 2, image.height / 2, 0.7 * 1.004 ** -(t if motion == "zoom" else 0)
            box = (cx - k * SIZE[0], cy - k * SIZE[1], cx + k * SIZE[0], cy + k * SIZE[1])
        still = np.asarray(image.resize(SIZE, Image.Resampling.BICUBIC, box=box), np.float32)
        if motion == "fade":  # linear in the stored levels, as an editor's fade is
            still *= t / (frames - 1)
        return np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8)

    return write_clip((frame(t) for t in range(frames)), out, 25)


# The made clips: which of `held_out_sample(4)` each moves over, and its noise's seed.
MADE = {"pan": (0, 0), "zoom": (2, 1), "fade": (1, 2)}


def made_clip(motion: str, folder: Path, frames: int) -> Path:
    """The pan, zoom or fade this script measures, on the same held-out photo with the same noise
    each time, written into `folder`."""
    photo, seed = MADE[motion]
    return camera_clip(held_out_sample(4)[photo], folder / f"{motion}.mp4", motion, frames, seed)


def excerpt(film: Path, start: float, frames: int, folder: Path) -> Path | None:
    """`frames` frames of a film from `start` seconds on (past a title sequence, say), written
    into `folder`; the film itself from 0; None (and a note) where the film ends sooner."""
    if start == 0:
        return film
    with av.open(str(film)) as source:
        rate = source.streams.video[0].average_rate
    first = round(start * float(rate))
    total = frame_count(film)
    if total is not None and first + frames > total:
        print(f"{film.name}: no {frames} frames from {start:g} s on; left out", flush=True)
        return None
    clip = itertools.islice(read_frames(film), first, first + frames)
    return write_clip(clip, folder / f"{film.stem}_{start:g}s.mp4", rate)


def flicker_strip(film: Path, model: str, start: float, out: Path, frames: int = 24) -> None:
    """The README's figure: one frame per-frame and steadied (default --temporal), and beside each
    its flicker, |frame - previous frame warped onto it| on reliable pixels (x4, dark is steady).
    The frame is the last that moves: a repeated frame would show no flicker either way."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = excerpt(film, start, frames, Path(tmp))
        assert clip is not None, f"{film.name}: no {frames} frames from {start:g} s on"
        greys = [grey(f) for f in read_frames(clip)]
        moved = (block_difference(a, b) >= TemporalFilter.REPEATED for a, b in itertools.pairwise(greys))
        t = max(t for t, m in enumerate(moved, 1) if m)
        motion = FlowEstimator().motion(greys[t - 1], greys[t])
        cells, stylizer, stylised = [], Stylizer.load(model), Path(tmp) / "out.mp4"
        for strength in (0.0, TEMPORAL):
            stylize_video(stylizer, clip, stylised, overwrite=True, temporal=strength)
            previous, current = list(read_frames(stylised))[t - 1 : t + 1]
            diff = warp_difference(current, previous, motion)
            flicker = np.clip(4 * diff * motion.reliable, 0, 255).astype(np.uint8)
            cells += [current, np.repeat(flicker[..., None], 3, -1)]
    h, w = cells[0].shape[:2]
    strip = np.concatenate([np.asarray(Image.fromarray(c).resize((w // 2, h // 2))) for c in cells], 1)
    Image.fromarray(strip).save(out, quality=85)
    print(f"{out}: per frame | its flicker | --temporal {TEMPORAL:g} | its flicker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mosaic_light", help="the style to stylise with")
    parser.add_argument("--stable-model", help="the same style fine-tuned with --stability-weight")
    parser.add_argument("--style", default=str(SHARED / "styles" / "mosaic.jpg"), help="its painting")
    parser.add_argument("--strengths", default="0.5,0.8", help="--temporal values to measure")
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    parser.add_argument(
        "--film-start",
        default="0",
        help="seconds into each shared film; several, comma-separated: one clip each",
    )
    parser.add_argument("--films-only", action="store_true", help="not the clips made from held-out photos")
    parser.add_argument(
        "--film", help="only the shared film whose name starts with this (chaplin, big; none: no film)"
    )
    parser.add_argument(
        "--crf", default="", help="x264 CRFs to encode at, comma-separated (default: stylize's, 18)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds for frames/s (0: none)")
    parser.add_argument("--speed-only", action="store_true", help="only the frames/s part")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--strip", type=Path, help="only write the README's flicker figure here (JPEG)")
    args = parser.parse_args()
    if args.strip:
        flicker_strip(FILMS[0], args.model, float(args.film_start.split(",")[0]), args.strip)
        return
    strengths = [float(s) for s in args.strengths.split(",")]
    crfs = [int(c) for c in args.crf.split(",")] if args.crf else [None]
    models = {"": args.model} | ({"stable ": args.stable_model} if args.stable_model else {})
    results: dict = {"machine": machine(), "model": args.model, "stable_model": args.stable_model}
    results["clips"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        starts = [float(t) for t in args.film_start.split(",")]
        chosen = [f for f in FILMS if f.is_file() and f.name.startswith(args.film or "")]
        films = [excerpt(f, t, args.frames, folder) for f in chosen for t in starts]
        clips = [f for f in films if f is not None]
        if not args.films_only:
            clips += [made_clip(motion, folder, args.frames) for motion in MADE]
        for clip in [] if args.speed_only else clips:
            rows = results["clips"][clip.name] = {}
            for prefix, model in models.items():
                stylizer = Stylizer.load(model)
                for s, crf in itertools.product([0.0, *strengths], crfs):
                    name = f"{prefix}{'plain' if s == 0 else f'--temporal {s:g}'}"
                    name += "" if crf is None else f" --crf {crf}"
                    out = folder / f"{clip.stem}-{len(rows)}.mp4"
                    stylize_video(stylizer, clip, out, max_frames=args.frames, temporal=s, crf=crf)
                    report = evaluate_video(clip, out, Path(args.style))
                    rows[name] = {k: report[k] for k in ("temporal_error", "style_gap", "content_err")}
                    rows[name]["bytes"] = out.stat().st_size
                    print(clip.name, name, {k: round(v, 3) for k, v in rows[name].items()}, flush=True)
        if args.repeats:
            results["frames_per_s_640x360"] = speed(args, [FILMS[0], folder / "pan.mp4"], strengths, folder)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def speed(args: argparse.Namespace, clips: list[Path], strengths: list[float], folder: Path) -> dict:
    """Frames/s per clip and strength, side by side in one run, interleaved; one warm-up round.
    Timed on the film, whose repeated frames the filter does not stylise again, and on the pan,
    which has none."""
    stylizer, out = Stylizer.load(args.model), folder / "speed.mp4"
    runners = {
        (clip.stem, f"--temporal {s:g}"): partial(
            stylize_video, stylizer, clip, out, overwrite=True, max_frames=args.frames, temporal=s
        )
        for clip in clips
        for s in [0.0, *strengths]
    }
    fps: dict = {}
    for (clip_name, name), runs in interleaved_seconds(runners, 1, args.repeats).items():
        fps.setdefault(clip_name, {})[name] = args.frames / statistics.median(runs)
    print("frames/s", json.dumps(fps), flush=True)
    return fps


if __name__ == "__main__":
    main()
