"""Stylise a video: decode, stylise in batches, encode H.264, keep the sound.

Three threads in a pipeline joined by bounded queues (decode -> stylise -> encode), so the network
never waits on the codecs. The output is written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from rich.console import Console

from .config import CRF, TEMPORAL, FilterSettings
from .errors import UserError
from .files import atomic_path, refuse_to_replace
from .progress import progress_bar
from .runtime import Stylizer
from .temporal import TemporalFilter

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# Audio codecs the MP4/MOV muxers take as they are; others (Vorbis, PCM...) are re-encoded to AAC.
MP4_AUDIO = frozenset({"aac", "mp3", "mp3float", "ac3", "eac3", "alac", "opus"})
QUEUE_FRAMES = 64  # bounds the memory the pipeline holds
_END = object()


@dataclass
class VideoReport:
    frames: int
    fps: float
    audio: str  # "copied", "re-encoded to AAC" or "none"
    damage: str | None = None  # why decoding stopped early, if it did


def _why(error: Exception) -> str:
    """FFmpeg's reason, without PyAV's "[Errno 1094995529]" and the path we name anyway."""
    return getattr(error, "strerror", None) or str(error)


def video_suffix(src: Path) -> str:
    """The default output's extension: the source's where we can write it (H.264 in that
    container), else .mp4 (a .webm or .avi source)."""
    suffix = Path(src).suffix
    return suffix if suffix.lower() in OUTPUT_FORMATS else ".mp4"


def is_video_path(path: Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """A video's frames in order, upright, as (H, W, 3) uint8 RGB."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    try:
        with av.open(str(path)) as source:
            if not source.streams.video:
                raise UserError(f"{path}: has no video stream")
            stream = source.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in source.decode(stream):
                yield _upright(frame)
    except (av.FFmpegError, OSError) as e:
        raise UserError(f"{path}: cannot read video ({_why(e)})") from None


def frame_count(path: Path) -> int | None:
    """The number of frames a video's header announces, if it does."""
    try:
        with av.open(str(path)) as source:
            stream = source.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if stream.frames:
                return stream.frames
            if source.duration and rate:
                return round(source.duration / 1e6 * float(rate))
    except (av.FFmpegError, OSError, IndexError):
        pass
    return None


def short_of_header(frames: int, announced: int | None) -> str | None:
    """Why a video that gave `frames` frames is damaged, if it is: a truncated file often just
    ends early, with no decoding error, short of what its header announces."""
    if announced and frames < 0.98 * announced:
        return f"only {frames} of the {announced} frames its header announces"
    return None


def _h264_encoder() -> str:
    for name in ("libx264", "h264", "libopenh264"):
        if name in av.codecs_available:
            try:
                av.codec.Codec(name, "w")
                return name
            except ValueError:  # listed, but this build cannot encode with it
                continue
    raise UserError("this FFmpeg build (PyAV) has no H.264 encoder; install PyAV wheels from PyPI")


def stylize_video(
    stylizer: Stylizer,
    src: Path,
    dst: Path,
    overwrite: bool = False,
    console: Console | None = None,
    max_frames: int | None = None,
    temporal: float = TEMPORAL,
    filter_settings: FilterSettings | None = None,
    crf: int | None = None,
) -> VideoReport:
    """Stylise every frame of `src` (or the first `max_frames`: a quick preview) into `dst`.

    H.264, yuv420p, the source frame rate, audio kept. temporal: strength of the flow-guided
    blend with the previous output frame (`temporal.TemporalFilter`; 0: frames stylised alone).
    filter_settings: what of the filter depends on the network (None: what the model records,
    `Stylizer.filter_settings`).
    crf: x264's quality, 0 (lossless) to 51 (None: CRF); an H.264 encoder other than libx264 takes
    only the default.
    """
    src, dst = Path(src), Path(dst)
    fmt = OUTPUT_FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise UserError(f"{dst}: video output must be {', '.join(sorted(OUTPUT_FORMATS))} (H.264)")
    refuse_to_replace(dst, overwrite, inputs=[src])
    if not src.is_file():
        raise UserError(f"{src}: no such file")
    if not 0 <= temporal < 1:
        raise UserError(f"--temporal must be at least 0 and below 1 (got {temporal})")
    if crf is not None and not 0 <= crf <= 51:
        raise UserError(f"--crf must be 0 (lossless) to 51 (got {crf})")
    encoder = _h264_encoder()
    if crf is not None and encoder != "libx264":
        raise UserError(f"--crf needs libx264; this FFmpeg build (PyAV) encodes H.264 with {encoder}")
    try:
        source = av.open(str(src))
    except (av.FFmpegError, OSError) as e:
        raise UserError(f"{src}: cannot read video ({_why(e)})") from None
    with source, atomic_path(dst) as tmp:
        if not source.streams.video:
            raise UserError(f"{src}: has no video stream")
        vin = source.streams.video[0]
        vin.thread_type = "AUTO"
        ain = source.streams.audio[0] if source.streams.audio else None
        with av.open(str(tmp), "w", format=fmt) as sink:
            settings = filter_settings or stylizer.filter_settings
            steady = TemporalFilter(temporal, settings) if temporal else None
            console = console or Console(stderr=True)
            report = _transcode(
                stylizer, source, vin, ain, sink, src, console, max_frames, steady, encoder, crf
            )
    return report


def _transcode(
    stylizer: Stylizer,
    source: Any,
    vin: Any,
    ain: Any | None,
    sink: Any,
    src: Path,
    console: Console,
    max_frames: int | None,
    steady: TemporalFilter | None,
    encoder: str,
    crf: int | None,
) -> VideoReport:
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    vout = sink.add_stream(encoder, rate=rate)
    vout.pix_fmt = "yuv420p"
    vout.time_base = vin.time_base
    if encoder == "libx264":
        vout.options = {"crf": str(CRF if crf is None else crf), "preset": "medium"}
    aout, audio_mode = _audio_stream(ain, sink)
    total = vin.frames or int(float(source.duration or 0) / 1e6 * float(rate))
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames

    decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    stylized: queue.Queue = queue.Queue(QUEUE_FRAMES)
    damage: list[str] = []
    failure: list[BaseException] = []
    stop = threading.Event()  # the stylising loop ended early: the decoder must not wait on it

    def decode() -> None:
        streams = [s for s in (vin, ain) if s is not None]
        try:
            for packet in source.demux(streams):
                if stop.is_set():
                    break
                if packet.stream is ain:
                    if packet.dts is not None:
                        decoded.put(("audio", packet))
                    continue
                for frame in packet.decode():
                    decoded.put(("video", frame))
        except (av.FFmpegError, EOFError) as e:
            damage.append(f"decoding stopped: {_why(e)}")
        except BaseException as e:
            failure.append(e)
        finally:
            decoded.put(_END)

    def encode() -> None:
        try:
            while (item := stylized.get()) is not _END:
                kind, payload = item
                if kind == "video":
                    sink.mux(vout.encode(payload))
                elif aout is not None:
                    _mux_audio(payload, aout, audio_mode, sink)
            sink.mux(vout.encode(None))
            if audio_mode == "re-encoded to AAC":
                sink.mux(aout.encode(None))
        except BaseException as e:
            failure.append(e)
            while stylized.get() is not _END:  # unblock the producer
                pass

    decoder, encoder = (threading.Thread(target=f, daemon=True) for f in (decode, encode))
    decoder.start()
    encoder.start()
    frames = 0
    progress = progress_bar("video", console, "fps", count=bool(total))
    try:
        with progress:
            task = progress.add_task("", total=total or None, fps="")
            batch: list[Any] = []
            early_audio: list[Any] = []  # held back: muxing opens every encoder, before it is sized

            def flush() -> None:
                nonlocal frames
                if frames == 0:  # size the encoder from the first frame, upright and even
                    h, w = _upright(batch[0]).shape[:2]
                    vout.width, vout.height = w - w % 2, h - h % 2
                    for audio in early_audio:
                        stylized.put(audio)
                try:
                    outs = _stylize_frames(stylizer, batch, vout.width, vout.height, steady)
                except UserError as e:  # the runtime's errors name the frame's size, not the file
                    raise UserError(f"{src}: {e}") from None
                for out in outs:
                    stylized.put(("video", out))
                frames += len(batch)
                batch.clear()
                speed = progress.tasks[0].speed
                progress.update(task, completed=frames, fps=f"{speed:.1f} frames/s" if speed else "")

            while (item := decoded.get()) is not _END:
                if item[0] == "audio":
                    (early_audio.append if frames == 0 else stylized.put)(item)
                    continue
                batch.append(item[1])
                if len(batch) == stylizer.batch_size or frames + len(batch) == max_frames:
                    flush()
                if frames == max_frames:
                    break
            if batch:
                flush()
    finally:
        stop.set()
        while decoder.is_alive():
            with contextlib.suppress(queue.Empty):
                decoded.get(timeout=0.1)
        stylized.put(_END)
        encoder.join()
    if failure:
        error = failure[0]
        if isinstance(error, av.FFmpegError):
            raise UserError(f"{src}: video encoding failed ({_why(error)})") from None
        raise error
    if frames == 0:
        raise UserError(f"{src}: no video frame could be decoded")
    if not damage and (why := short_of_header(frames, total)):
        damage.append(why)
    return VideoReport(frames, float(rate), audio_mode, damage[0] if damage else None)


def _stylize_frames(
    stylizer: Stylizer, frames: list[Any], width: int, height: int, steady: TemporalFilter | None
) -> list[Any]:
    """Stylised copies of `frames`, cropped to even sizes (yuv420p needs them), timestamps kept."""
    rgb = [_upright(f) for f in frames]
    if steady is None:
        out = list(stylizer.stylize_array(np.stack(rgb)))
    else:  # repeated frames (None) are not stylised: `blend` gives them the last output
        inputs, motions = zip(*(steady.steady(f) for f in rgb), strict=True)
        fresh = [i for i in inputs if i is not None]
        stylised = iter(stylizer.stylize_array(np.stack(fresh)) if fresh else [])
        pairs = zip(inputs, motions, strict=True)
        out = [steady.blend(None if i is None else next(stylised), m) for i, m in pairs]
    result = []
    for src, arr in zip(frames, out, strict=True):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr[:height, :width]), format="rgb24")
        frame.pts, frame.time_base = src.pts, src.time_base
        result.append(frame)
    return result


def _upright(frame: Any) -> np.ndarray:
    """The frame as a player shows it: phone videos are stored sideways with a rotation tag.

    The output is written upright with no tag, since not every player honours one.
    """
    return np.rot90(frame.to_ndarray(format="rgb24"), k=round(frame.rotation / 90) % 4)


def _audio_stream(ain: Any | None, sink: Any) -> tuple[Any | None, str]:
    if ain is None:
        return None, "none"
    name = ain.codec_context.name
    mp4_like = sink.format.name in ("mp4", "mov")
    if (name in MP4_AUDIO or not mp4_like) and name in sink.supported_codecs:
        return sink.add_stream_from_template(ain), "copied"
    out = sink.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
    return out, "re-encoded to AAC"


def _mux_audio(packet: Any, aout: Any, mode: str, sink: Any) -> None:
    if mode == "copied":
        packet.stream = aout
        sink.mux(packet)
        return
    for frame in packet.decode():
        frame.pts = None
        sink.mux(aout.encode(frame))
