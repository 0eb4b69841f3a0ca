"""Shared by the runtime, export and video tests: a small deterministic model and generated clips."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import torch

from fast_nst.transformer import TransformerNet, model_record


def make_model(path: Path, width: int = 16) -> Path:
    """A seeded, untrained TransformerNet saved like `fast-nst train` saves one.

    Not a style, but a fixed real function of the image with every layer a trained one has, which
    is all that parity, tiling, size and file-handling tests need.
    """
    torch.manual_seed(0)
    torch.save(model_record(TransformerNet(width=width), {"style": "seeded"}), path)
    return path


def make_clip(
    path: Path, fmt: str, audio_codec: str, frames: int = 12, size=(96, 64), fps: int = 10, step: int = 4
) -> Path:
    """A short H.264 clip of a photo moving by `step` px a frame (0: a still shot), with a 440 Hz
    tone as its sound track."""
    from PIL import Image

    photo = np.asarray(
        Image.open(Path(__file__).parent / "assets" / "dog.jpg").convert("RGB").resize((200, 200))
    )
    with av.open(str(path), "w", format=fmt) as c:
        video = c.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        audio = c.add_stream(audio_codec, rate=16000)
        audio.layout = "mono"
        for i in range(frames):
            crop = np.ascontiguousarray(photo[i * step : i * step + size[1], i * step : i * step + size[0]])
            c.mux(video.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")))
        t = np.arange(16000 * frames // fps) / 16000
        tone = av.AudioFrame.from_ndarray(
            (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)[None], format="s16", layout="mono"
        )
        tone.sample_rate = 16000
        c.mux(audio.encode(tone))
        c.mux(audio.encode(None))
        c.mux(video.encode(None))
    return path


def make_rotated_clip(path: Path, frames: int = 3) -> Path:
    """A 64x32 MP4 whose left half is white, tagged "rotate 90 degrees clockwise to display".

    PyAV cannot write the tag, so the track header's display matrix is patched in place.
    """
    with av.open(str(path), "w", format="mp4") as c:
        video = c.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 32, "yuv420p"
        image = np.zeros((32, 64, 3), np.uint8)
        image[:, :32] = 255
        for _ in range(frames):
            c.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        c.mux(video.encode(None))
    data = bytearray(path.read_bytes())
    box = data.index(b"tkhd") - 4  # version 0 header: the 3x3 matrix is at bytes 48..84
    data[box + 48 : box + 84] = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 32 << 16, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path
