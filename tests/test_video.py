"""Video: every frame stylised at the source size and rate, sound kept, damage reported."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli, shared_path
from helpers_runtime import make_clip, make_model, make_rotated_clip

from fast_nst.runtime import Stylizer
from fast_nst.video import read_frames, stylize_video


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    return Stylizer.load(make_model(tmp_path_factory.mktemp("model") / "seeded.pt", width=8), batch_size=4)


def probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        audio = [s.codec_context.name for s in c.streams.audio]
        size = (v.codec_context.width, v.codec_context.height)
        return frames, v.average_rate, size, audio, v.codec_context.name


def test_clip_with_aac_audio_keeps_frames_rate_size_and_sound(stylizer, tmp_path):
    src = make_clip(tmp_path / "clip.mp4", "mp4", "aac")
    report = stylize_video(stylizer, src, tmp_path / "out.mp4")
    assert report.audio == "copied" and report.damage is None
    frames, rate, size, audio, codec = probe(tmp_path / "out.mp4")
    assert (frames, rate, size, audio, codec) == (12, Fraction(10), (96, 64), ["aac"], "h264")
    assert not list(tmp_path.glob("*.tmp"))


def test_audio_the_container_cannot_hold_is_reencoded(stylizer, tmp_path):
    src = make_clip(tmp_path / "clip.mkv", "matroska", "pcm_s16le")
    report = stylize_video(stylizer, src, tmp_path / "out.mp4")
    assert report.audio == "re-encoded to AAC"
    frames, _, _, audio, _ = probe(tmp_path / "out.mp4")
    assert frames == 12 and audio == ["aac"]


def test_rotation_tag_is_applied(tmp_path):
    src = make_rotated_clip(tmp_path / "phone.mp4")
    unchanged = Stylizer.load(make_model(tmp_path / "m.pt", width=8), strength=0)
    stylize_video(unchanged, src, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == 0
        image = frame.to_ndarray(format="rgb24").astype(float)
    assert image.shape == (64, 32, 3)  # upright: portrait
    assert image[:28].mean() > 200 and image[36:].mean() < 50  # the white half is now on top


def test_truncated_file_is_stylised_up_to_the_damage_and_reported(tmp_path):
    src = make_clip(tmp_path / "clip.mkv", "matroska", "pcm_s16le", frames=30)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    model = make_model(tmp_path / "m.pt", width=8)
    result = run_cli("stylize", str(model), str(src), "-o", str(tmp_path / "o.mp4"))
    assert_one_line_error(result, "clip.mkv: damaged")
    frames, *_ = probe(tmp_path / "o.mp4")
    assert 0 < frames < 30


def test_not_a_video_is_one_line(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 1000)
    result = run_cli("stylize", str(make_model(tmp_path / "m.pt", width=8)), str(tmp_path / "bad.mp4"))
    assert_one_line_error(result, "bad.mp4: cannot read video")


@pytest.mark.slow
def test_chaplin_every_frame_at_source_size_and_rate(stylizer, tmp_path):
    src = shared_path("video/chaplin.mp4")
    report = stylize_video(stylizer, src, tmp_path / "chaplin.mp4")
    assert report.frames == 241 and report.damage is None and report.audio == "copied"
    frames, rate, size, audio, _ = probe(tmp_path / "chaplin.mp4")
    assert (frames, rate, size) == (241, Fraction(25), (640, 360)) and audio == ["mp3float"]


def test_frames_option_previews_the_start(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", "mp4", "aac")
    model = make_model(tmp_path / "m.pt", width=8)
    result = run_cli("stylize", str(model), str(src), "-o", str(tmp_path / "o.mp4"), "--frames", "5")
    assert result.returncode == 0, result.stderr
    frames, rate, size, audio, _ = probe(tmp_path / "o.mp4")
    assert (frames, rate, size, audio) == (5, Fraction(10), (96, 64), ["aac"])


def test_crf_trades_file_size_for_the_stylised_frames_fidelity(tmp_path):
    """Chaplin's first 12 frames through a built-in style: each step down in --crf gives a larger
    file whose frames are closer to the lossless encoding (--crf 0) of the same stylised frames.
    The CLI takes the option; an image refuses it in one line."""
    src = shared_path("video/chaplin.mp4")
    stylizer = Stylizer.load("mosaic_fast")
    outs = {crf: tmp_path / f"crf{crf}.mp4" for crf in (0, 12, 18)}
    for crf, out in outs.items():
        stylize_video(stylizer, src, out, max_frames=12, crf=None if crf == 18 else crf)
    outs[30] = tmp_path / "crf30.mp4"
    result = run_cli("stylize", "--style", "mosaic_fast", str(src), "-o", str(outs[30]), "--frames", "12",
                     "--crf", "30")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lossless = np.stack(list(read_frames(outs[0]))).astype(float)
    error = {crf: np.abs(np.stack(list(read_frames(out))) - lossless).mean() for crf, out in outs.items()}
    size = {crf: out.stat().st_size for crf, out in outs.items()}
    assert size[0] > size[12] > size[18] > size[30]
    assert error[12] < error[18] < error[30] and error[12] > 0
    image = shared_path("photos/test/chicago.jpg")
    result = run_cli("stylize", "--style", "mosaic_fast", str(image), "-o", str(tmp_path / "a.jpg"),
                     "--crf", "12")  # fmt: skip
    assert_one_line_error(result, "chicago.jpg: --crf sets a video's H.264 quality")
    assert not (tmp_path / "a.jpg").exists()
