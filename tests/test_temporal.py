"""Flicker in video: the optical flow the measure rests on, the temporal error, the stability loss
and the flow-guided blend, on real photos and a real film."""

from __future__ import annotations

import itertools
import json
from functools import partial

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import ASSETS, assert_one_line_error, run_cli, shared_path
from helpers_runtime import make_clip
from PIL import Image

from fast_nst.config import TEMPORAL, FilterSettings
from fast_nst.errors import UserError
from fast_nst.evaluate import evaluate_video
from fast_nst.losses import Shake
from fast_nst.runtime import Stylizer
from fast_nst.temporal import MIN_RELIABLE, FlowEstimator, TemporalFilter, grey, restore_contrast, warp_error
from fast_nst.video import read_frames, stylize_video


def bunny(start: int, stop: int) -> list[np.ndarray]:
    """Frames start..stop-1 of Big Buck Bunny (1280x720): a still sky fading in from black (0-48),
    then held still while trees sway (from 48)."""
    return list(itertools.islice(read_frames(shared_path("video/big_buck_bunny_0_30.webm")), start, stop))


def per_frame_and_steadied(frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The frames in `mosaic_light`, each alone and through the default temporal filter."""
    stylizer = Stylizer.load("mosaic_light")
    steady = TemporalFilter(TEMPORAL)
    blended = []
    for frame in frames:
        network_input, motion = steady.steady(frame)
        stylised = None if network_input is None else stylizer.stylize_array(network_input[None])[0]
        blended.append(steady.blend(stylised, motion))
    return list(stylizer.stylize_array(np.stack(frames))), blended


def test_flow_finds_a_known_move_of_a_real_photo(photo):
    """Two crops of the Chicago photo 3 px apart: the flow says 3 px, the warp lines them up."""
    image = np.asarray(Image.open(photo).convert("RGB"))
    previous, current = image[20:220, 20:340], image[20:220, 23:343]  # current(x) = previous(x + 3)
    motion = FlowEstimator().motion(grey(previous), grey(current))
    xs = np.arange(320, dtype=np.float32)[None, :]
    inner = (slice(16, -16), slice(16, -16))
    assert np.median((motion.map_x - xs)[inner]) == pytest.approx(3, abs=0.25)
    assert np.median((motion.map_y - np.arange(200)[:, None])[inner]) == pytest.approx(0, abs=0.25)
    assert motion.reliable[inner].mean() > 0.9
    assert not motion.reliable[:, -2:].any()  # those pixels came from outside the previous crop
    assert warp_error(current, previous, motion) < 2
    assert np.abs(current.astype(float) - previous).mean() > 10  # unwarped, the crops differ


def test_an_hd_frame_s_motion_is_found_at_640_px_and_scaled_up(photo):
    """Two 1280x720 crops of the Chicago photo 6 px apart: the flow, found at 640x360, still says
    6 px at full size."""
    image = Image.open(photo).convert("RGB")
    image = np.asarray(
        image.resize((1300, round(1300 * image.height / image.width)), Image.Resampling.BICUBIC)
    )
    previous, current = image[:720, :1280], image[:720, 6:1286]  # current(x) = previous(x + 6)
    motion = FlowEstimator().motion(grey(previous), grey(current))
    assert motion.map_x.shape == (720, 1280) and motion.reliable.shape == (720, 1280)
    inner = (slice(32, -32), slice(32, -32))
    assert np.median((motion.map_x - np.arange(1280)[None, :])[inner]) == pytest.approx(6, abs=0.5)
    assert motion.reliable[inner].mean() > 0.9
    assert warp_error(current, previous, motion) < 3


@pytest.mark.slow
def test_an_hd_film_s_fade_is_steadied():
    """Big Buck Bunny's fade-in, at its 1280x720: with the flow found at that size, where DIS's
    8-px patches of the sky hold nothing to match, the blend's output changed from frame to frame
    0.74x as much as per-frame stylisation's (measured at 512 px, as `evaluate --video` does); with
    the flow found at 640x360, 0.56x."""
    frames = bunny(30, 42)
    plain, blended = per_frame_and_steadied(frames)

    def change(outputs: list[np.ndarray]) -> float:
        """Mean warp_error of consecutive outputs at 512 px, along the film's own flow there."""
        shrink = partial(cv2.resize, dsize=(512, 288), interpolation=cv2.INTER_AREA)
        flow, errors = FlowEstimator(), []
        for (f0, o0), (f1, o1) in itertools.pairwise(zip(frames, outputs, strict=True)):
            errors.append(warp_error(shrink(o1), shrink(o0), flow.motion(grey(shrink(f0)), grey(shrink(f1)))))
        return float(np.mean(errors))

    assert change(blended) < 0.65 * change(plain)


def test_a_still_sky_does_not_move():
    """Big Buck Bunny's still shot (frames 48-57): its sky changed by under half a grey level a
    frame, but DIS, for which any flow matches a flat sky, moved parts of it by a pixel or more. Where
    a neighbourhood changed by less than half a level the motion is zero; the trees, which sway,
    keep theirs."""
    frames = [grey(f) for f in bunny(48, 58)]
    dis, flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST), FlowEstimator()
    shrink = partial(cv2.resize, dsize=(640, 360), interpolation=cv2.INTER_AREA)
    xs, ys = np.meshgrid(np.arange(1280), np.arange(720))
    sky, trees = (slice(0, 360), slice(None)), (slice(500, 720), slice(900, 1280))
    dis_moved, still, swaying = [], [], []
    for previous, current in itertools.pairwise(frames):
        assert np.abs(current.astype(float) - previous)[sky].mean() < 0.5
        backward = dis.calc(shrink(current), shrink(previous), None)[:180]
        dis_moved.append((np.hypot(backward[..., 0], backward[..., 1]) > 0.5).mean())
        motion = flow.motion(previous, current)
        moved = np.hypot(motion.map_x - xs, motion.map_y - ys)
        still.append((moved[sky] == 0).mean())
        swaying.append(np.median(moved[trees]))
    assert max(dis_moved) > 0.4  # over half a pixel on 44% of the sky, frames 48-49
    assert min(still) > 0.7 and np.mean(still) > 0.85
    assert min(swaying) > 1


@pytest.mark.slow
def test_a_still_shot_s_sky_stays_still():
    """Big Buck Bunny's still shot, at its 1280x720: following DIS's made-up motion in the still
    sky (above), the blend's strokes there changed from frame to frame 0.83x as much as per-frame
    stylisation's (at the measure's 512 px, 1.5x: the strokes were dragged about whole, where the
    per-frame shimmer is finer); with no motion where nothing changed, about half."""
    plain, blended = per_frame_and_steadied(bunny(48, 60))

    def sky_change(outputs: list[np.ndarray]) -> float:
        """Mean change of the sky from frame to frame, unwarped: nothing moved there."""
        changes = [np.abs(b[:360].astype(float) - a[:360]).mean() for a, b in itertools.pairwise(outputs)]
        return float(np.mean(changes))

    assert sky_change(blended) < 0.65 * sky_change(plain)


def test_a_film_against_itself_has_temporal_error_one():
    film = shared_path("video/chaplin.mp4")
    report = evaluate_video(film, film, size=256)
    assert report["temporal_error"] == pytest.approx(1.0)
    assert report["frames"] == 241 and report["pairs"] >= 200  # a few cuts are left out
    assert 0.5 < report["original_warp_error"] < 10
    assert "note" not in report


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, object]:
    """The first 16 frames of the film in the light mosaic style, per frame and with the blend at
    its default strength."""
    film = shared_path("video/chaplin.mp4")
    folder = tmp_path_factory.mktemp("temporal")
    stylizer = Stylizer.load("mosaic_light")
    out = {"film": film}
    for name, strength in (("plain", 0.0), ("blended", TEMPORAL)):
        stylize_video(stylizer, film, folder / f"{name}.mp4", max_frames=16, temporal=strength)
        out[name] = folder / f"{name}.mp4"
    return out


@pytest.mark.slow
def test_the_flow_guided_blend_cuts_the_flicker_of_a_real_film(clips):
    painting = ASSETS / "mosaic.jpg"
    plain = evaluate_video(clips["film"], clips["plain"], painting)
    blended = evaluate_video(clips["film"], clips["blended"], painting)
    assert plain["frames"] == blended["frames"] == 16  # a preview is compared with the film's start
    assert plain["gap_frames"] == 8  # sampled through those 16 frames, not through the film's 241
    assert plain["temporal_error"] > 2.5  # per-frame strokes shimmer: 2.5x the film's own change
    assert blended["temporal_error"] < 0.6 * plain["temporal_error"]
    assert blended["style_gap"] < plain["style_gap"] + 0.03  # still the painting's texture
    # The film's frame 1 repeats frame 0: stylised alone it changes a little (0.46 levels on
    # average), steadied it is the same picture, up to the encoder's noise (0.06).
    change = {}
    for name in ("plain", "blended"):
        first, second = (f.astype(float) for f in itertools.islice(read_frames(clips[name]), 2))
        change[name] = np.abs(first - second).mean()
    assert change["blended"] < 0.15 and change["plain"] > 3 * change["blended"]


def test_the_filter_passes_the_first_frame_and_a_cut_through_untouched(photo):
    steady = TemporalFilter(0.8)
    scene, dog = (np.asarray(Image.open(p).convert("RGB")) for p in (photo, ASSETS / "dog.jpg"))
    for frame in (scene[:200, :300], dog[:200, :300]):  # frame 0, then a cut: nothing to follow
        network_input, motion = steady.steady(frame)
        assert motion is None and network_input is frame
        stylised = frame[::-1].copy()  # stands in for the network's output
        assert steady.blend(stylised, motion) is stylised
    network_input, motion = steady.steady(dog[2:202, 3:303])  # the scene moved: followed and blended
    assert motion is not None and motion.reliable.mean() > 0.9
    fresh = np.zeros_like(stylised)
    out = steady.blend(fresh, motion)
    assert 0.7 * stylised.mean() < out.mean() < 0.85 * stylised.mean()  # 80% of the previous output


def test_a_repeated_frame_is_given_the_last_output_not_stylised_again():
    """Chaplin's film was shot slower than the 25 frames/s it is stored at: frames 1 and 4 repeat
    frames 0 and 3 (up to compression noise). A repeat gets the last output as it is, while the
    frames between, which move, are stylised and blended."""
    frames = list(itertools.islice(read_frames(shared_path("video/chaplin.mp4")), 5))
    steady = TemporalFilter(TEMPORAL)
    inputs, outputs = [], []
    for frame in frames:
        network_input, motion = steady.steady(frame)
        stylised = None if network_input is None else network_input[::-1].copy()  # the network's stand-in
        inputs.append(network_input)
        outputs.append(steady.blend(stylised, motion))
    assert [i is None for i in inputs] == [False, True, False, False, True]
    assert outputs[1] is outputs[0] and outputs[4] is outputs[3]
    assert np.abs(outputs[2].astype(float) - outputs[1]).mean() > 1


def test_a_frame_barely_out_of_black_is_a_new_picture_not_a_repeat():
    """Big Buck Bunny opens on black (frames 0-4, identical: repeats) and its sky starts to show at
    frame 5, half a grey level of spread, every block within 2 levels of black. To the network,
    which normalises contrast, that is a picture, not the black frame again: it is stylised."""
    frames = bunny(0, 9)
    steady = TemporalFilter(TEMPORAL)
    repeats = []
    for frame in frames:
        network_input, motion = steady.steady(frame)
        repeats.append(network_input is None)
        steady.blend(None if network_input is None else network_input.copy(), motion)
    assert repeats == [False, True, True, True, True, False, False, False, False]


def test_a_fade_is_followed_not_taken_for_a_cut():
    """Big Buck Bunny opens on a still sky fading in from black. Its flow passes the forward-backward
    check on under half the pixels (a sky has no texture to match both ways), which made
    every frame of the fade a cut, left to the network alone; but moved by that flow and relit,
    the previous frame lands within a few levels of the current one, so the motion is trusted and
    the fade steadied. The steadied input keeps each frame's brightness as the fade goes on."""
    frames = bunny(31, 39)
    steady, flow = TemporalFilter(TEMPORAL), FlowEstimator()
    for previous, frame in itertools.pairwise([None, *frames]):
        network_input, motion = steady.steady(frame)
        steady.blend(network_input, motion)
        if previous is not None:
            assert flow.motion(grey(previous), grey(frame)).reliable.mean() < MIN_RELIABLE  # "a cut"
            assert motion is not None and motion.reliable.mean() > 0.9
            assert abs(network_input.mean() - frame.mean()) < 1.5  # 5-7 levels brighter every frame


def steadied_inputs(frames: list[np.ndarray], fade_discount: float) -> list[np.ndarray | None]:
    """The network's input for each frame through the default filter (None: a repeat), with the
    frame itself standing in for its stylisation."""
    steady, inputs = TemporalFilter(TEMPORAL, FilterSettings(fade_discount=fade_discount)), []
    for frame in frames:
        network_input, motion = steady.steady(frame)
        steady.blend(network_input, motion)
        inputs.append(network_input)
    return inputs


def test_a_fade_discount_weighs_the_darkest_frames_of_a_fade_in_less():
    """Big Buck Bunny's opening fades in from black, its contrast growing up to 1.5-fold a frame.
    Relit at every frame, the steadied input keeps what the darkest frames held (their codec
    blocks): at frame 49 it is 5.5 grey levels from the frame; with the steadying divided by the
    gain cubed (`udnie`'s fade_discount) 2.3."""
    frames = bunny(0, 50)

    def last_miss(fade_discount: float) -> float:
        last = steadied_inputs(frames, fade_discount)[-1]
        assert last is not None
        return float(np.abs(last.astype(np.float32) - frames[-1]).mean())

    assert last_miss(0) > 4.5 and last_miss(3) < 3


def test_a_fade_discount_changes_nothing_where_nothing_fades():
    """Chaplin's first second: no frame brightens by 2%, so the discount never applies."""
    frames = list(itertools.islice(read_frames(shared_path("video/chaplin.mp4")), 25))
    plain, discounted = steadied_inputs(frames, 0), steadied_inputs(frames, 3)
    assert sum(i is None for i in plain) >= 5  # repeats, passed over the same way
    for a, b in zip(plain, discounted, strict=True):
        assert (a is None and b is None) or np.array_equal(a, b)


def test_a_built_in_style_s_filter_settings_travel_with_its_model_into_onnx():
    """Measured per network: `udnie` draws the codec blocks a steadied fade carries (fade discount
    3), `wave`'s strokes do not line up from frame to frame (no contrast restored; `the_scream`
    records both), the mosaic networks need neither (`mosaic_light`: none recorded, the plain
    filter). On a CPU a .pt runs through its cached ONNX export, which must keep them."""
    for backend in ("torch", "onnxruntime"):
        assert Stylizer.load("udnie", backend=backend).filter_settings == FilterSettings(fade_discount=3)
        assert Stylizer.load("wave", backend=backend).filter_settings == FilterSettings(contrast_restored=0)
        assert Stylizer.load("the_scream", backend=backend).filter_settings == FilterSettings(3, 0)
    assert Stylizer.load("mosaic_light").filter_settings == FilterSettings()


def test_contrast_restored_sets_how_much_of_the_blend_s_lost_contrast_comes_back():
    """Chaplin's first 12 frames, each with fresh noise (std 12) as the stand-in for strokes that
    do not line up from frame to frame: the plain blend averages them towards the picture (0.8 of
    their spread left), and the more of their contrast given back, the more of it returns, all of
    it at 1."""
    frames = list(itertools.islice(read_frames(shared_path("video/chaplin.mp4")), 12))
    rng = np.random.default_rng(0)
    strokes = [np.clip(f + rng.normal(0, 12, f.shape), 0, 255).astype(np.uint8) for f in frames]

    def spread(image: np.ndarray) -> float:  # how far the strokes stray from the last frame
        return float(np.abs(image.astype(np.float32) - frames[-1]).mean())

    def last_output(amount: float) -> np.ndarray:
        steady = TemporalFilter(TEMPORAL, FilterSettings(contrast_restored=amount))
        for frame, stylised in zip(frames, strokes, strict=True):
            network_input, motion = steady.steady(frame)
            out = steady.blend(None if network_input is None else stylised, motion)
        return out

    plain, half, full, alone = *(spread(last_output(a)) for a in (0, 0.5, 1)), spread(strokes[-1])
    assert plain < 0.9 * half and half < 0.95 * full and abs(full / alone - 1) < 0.05


def test_the_dark_start_of_a_fade_is_mostly_left_to_the_network(photo):
    """A real photo at 4% and then 8% of its brightness, with fresh noise (std 3) in each frame:
    every pixel is within a few grey levels of the last, but to the network, which normalises
    each frame's contrast, the picture is emerging from the noise, and holding on to the first
    frame's noise-made strokes would carry them through the fade. So the filter's thresholds
    shrink with the frame's contrast, and it trusts fewer pixels than pass the flow's own check
    (with fixed thresholds: nearly all of them, 96%)."""
    scene = np.asarray(Image.open(photo).convert("RGB"))[:200, :300].astype(np.float32)
    rng = np.random.default_rng(0)

    def frame(brightness: float) -> np.ndarray:
        return np.clip(scene * brightness + rng.normal(0, 3, scene.shape), 0, 255).astype(np.uint8)

    first, second = frame(0.04), frame(0.08)
    steady = TemporalFilter(TEMPORAL)
    steady.steady(first)
    _, motion = steady.steady(second)
    checked = FlowEstimator().motion(grey(first), grey(second)).reliable.mean()
    assert motion is not None and motion.reliable.mean() < checked


def test_a_change_the_flow_does_not_explain_is_left_to_the_network(photo):
    """The same scene twice, but a square of it turned white (say, an arm moved in): the flow
    follows the scene, yet the square is neither steadied nor blended, so no ghost of what was
    there before is painted over it."""
    scene = np.asarray(Image.open(photo).convert("RGB"))[:200, :300].copy()
    changed = scene.copy()
    changed[60:120, 100:180] = 255
    steady = TemporalFilter(0.9)
    steady.blend(np.zeros_like(scene), steady.steady(scene)[1])  # frame 0: a black output
    network_input, motion = steady.steady(changed)
    assert motion is not None and motion.reliable.mean() > 0.8
    assert not motion.reliable[70:110, 110:170].any()
    assert np.array_equal(network_input[70:110, 110:170], changed[70:110, 110:170])
    out = steady.blend(np.full_like(scene, 200), motion)
    assert (out[70:110, 110:170] == 200).all()  # the network's, not the black frame's
    assert out[150:190, 20:80].mean() < 60  # elsewhere the previous output is followed


def test_restoring_contrast_undoes_what_averaging_two_textures_took(photo):
    """Two views of a real photo 7 px apart, averaged: flatter than either. Restored towards one
    of them, the local contrast is back to within 10% (all of it restored) or half-way (the
    default), nothing moved (the blend's local mean is kept), and a frame restored towards itself
    is untouched."""
    image = np.asarray(Image.open(photo).convert("RGB"))
    a, b = image[:200, :300], image[7:207, 7:307]
    blended = ((a.astype(np.float32) + b) / 2 + 0.5).astype(np.uint8)
    restored, half = restore_contrast(blended, a, amount=1), restore_contrast(blended, a)

    def local_std(x: np.ndarray) -> float:
        x = x.astype(np.float32)
        return float(np.sqrt(np.maximum(cv2.blur(x * x, (13, 13)) - cv2.blur(x, (13, 13)) ** 2, 0)).mean())

    assert local_std(blended) < 0.85 * local_std(a)
    assert abs(local_std(restored) - local_std(a)) < 0.1 * local_std(a)
    midway = (local_std(blended) + local_std(restored)) / 2
    assert abs(local_std(half) - midway) < 0.1 * (local_std(restored) - local_std(blended))
    assert np.abs(cv2.blur(restored, (13, 13)).astype(float) - cv2.blur(blended, (13, 13))).mean() < 2
    assert np.array_equal(restore_contrast(a, a), a)


def test_evaluate_video_prints_the_figures_and_refuses_a_longer_stylised_video(clips):
    film, blended = str(clips["film"]), str(clips["blended"])
    result = run_cli("evaluate", "--video", film, blended, "--size", "128", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == 16
    assert_one_line_error(
        run_cli("evaluate", "--video", blended, film, "--size", "128"),
        "more frames than",
    )
    assert_one_line_error(run_cli("evaluate", "--video", film, "missing.mp4"), "missing.mp4")


def test_evaluate_video_names_the_file_at_fault_and_what_is_wrong(clips, tmp_path):
    """A stylised video cut short (its index first, so it still opens) was measured on what was
    left as if whole; a one-frame one blamed the original; another shape was said to miss "the
    content image's shape" at the evaluation size; --metric was ignored; a still original made a
    ratio of noise (Big Buck Bunny's black start: 79) without a word."""
    film, blended = clips["film"], clips["blended"]
    with (
        av.open(str(blended)) as src,
        av.open(str(tmp_path / "fs.mp4"), "w", options={"movflags": "faststart"}) as out,
    ):
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = (tmp_path / "fs.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut\.mp4: damaged \(only \d+ of the 16 frames"):
        evaluate_video(film, tmp_path / "cut.mp4", size=128)
    stylize_video(Stylizer.load("mosaic_light"), film, tmp_path / "one.mp4", max_frames=1)
    with pytest.raises(UserError, match=r"one\.mp4: one frame"):
        evaluate_video(film, tmp_path / "one.mp4", size=128)
    square = make_clip(tmp_path / "square.mp4", "mp4", "aac", frames=3, size=(64, 64))
    with pytest.raises(
        UserError, match=r"square\.mp4: 64x64 does not have the shape of .*chaplin\.mp4's frames \(640x360\)"
    ):
        evaluate_video(film, square, size=128)
    assert_one_line_error(
        run_cli("evaluate", "--video", str(film), str(blended), "--metric", "gap"), "--metric"
    )
    still = make_clip(tmp_path / "still.mp4", "mp4", "aac", frames=4, step=0)
    report = evaluate_video(still, still, size=128)
    assert report["original_warp_error"] < 0.25 and "hardly changes" in report["note"]


def test_the_shake_error_is_zero_for_a_network_that_follows_the_photo_and_not_for_one_that_paints_over_it(
    photo,
):
    """The stability loss's measure: an identity "network" commutes with the move (only the
    brightness and noise are left), one that adds a fixed texture does not."""
    x = torch.from_numpy(np.asarray(Image.open(photo).convert("RGB"), np.float32) / 255)
    x = x.permute(2, 0, 1)[None]
    torch.manual_seed(0)
    shake = Shake.random(x)
    texture = torch.rand(1, 3, *x.shape[-2:]) * 0.2
    follows = shake.error(shake.photo(x), x).item()
    paints_over = shake.error(shake.photo(x) + texture, x + texture).item()
    assert follows < 0.002  # noise 0.02 and a brightness change of at most 5%
    assert paints_over > 2 * follows
    assert 0.9 < shake.valid.mean().item() < 1  # a thin border came from outside the photo
