"""Temporal stability of stylised video: optical flow between frames, the temporal error that
measures flicker, and the flow-guided blend that reduces it.

Flow comes from OpenCV's DIS (Kroeger et al. 2016), fast on a CPU and well kept. A pixel's flow
is trusted only where the forward and backward flows agree (Sundaram et al. 2010, as Ruder et al.
2016 use it for video style transfer): elsewhere it is occluded, disoccluded or badly matched.
Where a neighbourhood did not change at all, the motion is zero, whatever flow also matches it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache, cached_property, partial

import cv2
import numpy as np

from .config import CONTRAST_RESTORED, FilterSettings

# DIS's "fast" preset: 640x360 in a few milliseconds on one core, a tenth of a frame's stylisation.
_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
# A cut: fewer reliable pixels than this share means the previous frame shows another scene.
MIN_RELIABLE = 0.5


def grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@dataclass
class Motion:
    """How frame t-1 maps onto frame t: for each pixel x of t, where it was in t-1 (`map_x`,
    `map_y`, for cv2.remap) and whether that is to be trusted (`reliable`)."""

    map_x: np.ndarray
    map_y: np.ndarray
    reliable: np.ndarray  # bool (H, W)

    @cached_property
    def weight(self) -> np.ndarray:
        """`reliable` softened at its edges, (H, W, 1) float32: how much a mix follows the motion.
        Cached: the filter mixes its input and its output along the same motion."""
        return cv2.blur(self.reliable.astype(np.float32), (5, 5))[..., None]

    def warp(self, previous: np.ndarray) -> np.ndarray:
        """Frame t-1 (or anything aligned with it, such as its stylised version) seen from frame t."""
        # Bicubic: the blend warps its own output again at every frame, and bilinear interpolation,
        # a low-pass filter, would blur the strokes a little more each time.
        return cv2.remap(previous, self.map_x, self.map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


class FlowEstimator:
    """Motion between consecutive grey frames. One per video: DIS keeps buffers between calls."""

    # Long side, px: larger frames are compared at this size and the flow scaled up. DIS matches
    # 8-px patches (the fast preset), which on an HD frame hold too little of a sky or a wall to
    # match: in Big Buck Bunny's fade-in at 1280x720 a fifth of the pixels passed the check (at
    # 640x360 a third or more) and the flow was twice as rough from pixel to pixel; trusted where it
    # reproduced the frame (MATCHED), it dragged the strokes about: the blend's flicker was 0.74x
    # per-frame stylisation's, 0.56x with the flow found at 640x360. Half the size again (320)
    # lost detail: chaplin's 640x360 start went from -54% to -35%. A quarter of the pixels, too.
    SIZE = 640
    # Grey levels: where a 15-px neighbourhood changed by less than this on average (less than the
    # 8-bit step), nothing moved that could be seen, and the motion is zero. DIS matches patches,
    # and in a still, flat sky any flow matches: in Big Buck Bunny's still shot, whose sky changed
    # by 0.12 levels a frame, it found blobs of 1-2 px. Following them, the blend moved the sky's
    # strokes by 6.5 levels a frame where per-frame stylisation moved them by 4.3 (at 512 px), and
    # the measure, following much the same blobs, called it steadier. A slow pan or zoom is never
    # this quiet (0.1% and 1% of their pixels).
    QUIET = 0.5
    QUIET_WINDOW = 15  # px

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(_PRESET)

    def motion(self, previous: np.ndarray, current: np.ndarray) -> Motion:
        h, w = current.shape
        scale = min(1.0, self.SIZE / max(h, w))
        if scale < 1:
            size = (round(w * scale), round(h * scale))
            shrink = partial(cv2.resize, dsize=size, interpolation=cv2.INTER_AREA)
            previous, current = shrink(previous), shrink(current)
        backward, reliable = self._flow(previous, current)
        if scale < 1:
            backward = cv2.resize(backward, (w, h), interpolation=cv2.INTER_LINEAR) / scale
            reliable = cv2.resize(reliable.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).view(bool)
        xs, ys = _grid(h, w)
        return Motion(xs + backward[..., 0], ys + backward[..., 1], reliable)

    def _flow(self, previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The backward flow (current(x) ~ previous(x + backward(x))) and where it is reliable."""
        backward = self._dis.calc(current, previous, None)
        forward = self._dis.calc(previous, current, None)
        h, w = current.shape
        xs, ys = _grid(h, w)
        map_x, map_y = xs + backward[..., 0], ys + backward[..., 1]
        # Forward-backward check: following the backward flow, then the forward flow from there,
        # must come back (up to a tolerance that grows with the motion).
        there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        round_trip = np.square(backward + there).sum(-1)
        scale = np.square(backward).sum(-1) + np.square(there).sum(-1)
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        change = cv2.blur(cv2.absdiff(previous, current).astype(np.float32), (self.QUIET_WINDOW,) * 2)
        quiet = change < self.QUIET  # no motion, which the check trivially passes
        backward[quiet] = 0
        return backward, ((round_trip <= 0.01 * scale + 0.5) & inside) | quiet


@cache
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's x and y (float32, read-only): the identity map that flows are added to. Kept
    per size: a video asks for the same one or two sizes at every frame."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def warp_difference(current: np.ndarray, previous: np.ndarray, motion: Motion) -> np.ndarray:
    """Per pixel, the absolute difference (0-255 levels, mean over channels) between a frame and
    its predecessor warped onto it: flicker, where the motion is reliable."""
    return np.abs(current.astype(np.float32) - motion.warp(previous).astype(np.float32)).mean(-1)


def warp_error(current: np.ndarray, previous: np.ndarray, motion: Motion) -> float:
    """Mean of `warp_difference` over the pixels whose motion is reliable."""
    diff = warp_difference(current, previous, motion)
    return float(diff[motion.reliable].mean()) if motion.reliable.any() else 0.0


class TemporalFilter:
    """Per-frame stylisation made steady, in two steps around the network, both along the flow of
    the original frames and only where it is reliable (it passes the forward-backward check, or
    reproduces the frame: MATCHED) and explains the change (UNEXPLAINED), once the previous frame
    is given the current one's overall brightness (a fade is not motion):

    1. `steady`: the network's input is the frame blended with the previous (steadied) input
       warped onto it, a recursive filter along the motion (STEADY_INPUT). Film grain, sensor
       noise and compression shimmer no longer reach the network, which turns them into strokes;
       the image it sees is as sharp, so the style is not weakened.
    2. `blend`: out_t = (1 - s m) stylised_t + s m warp(out_{t-1}), m the reliability mask
       (softened at its edges), s the strength. A region that stays in view keeps its strokes
       from frame to frame; new content (disocclusions, a cut) comes from the network alone.
       Averaging strokes that differ lowers their contrast (the style gap rose by up to 0.06 at
       s = 0.9), so the blend's local contrast is then raised back towards the network output's,
       half-way by default (`restore_contrast`, `FilterSettings.contrast_restored`): the strokes
       stay where the blend put them, crisper.

    A frame that repeats the last one stylised (REPEATED) is not stylised again: its output is
    the last output. Films shot at 16-24 frames/s and stored at 25-30 repeat every second to
    fourth frame, and a fresh stylisation of a repeat, as the blend converges, differs a little.

    settings: what of the filter depends on the network (`FilterSettings`, default the plain
    filter's; a model's own: `Stylizer.filter_settings`).
    """

    STEADY_INPUT = 0.95
    # Grey levels: a pixel whose change the flow does not explain by this much is neither steadied
    # nor blended. The flow is wrong there (a fast arm, a turning face); following it anyway left
    # a faint copy of the arm where it had been. (The measure keeps the plain reliability mask.)
    UNEXPLAINED = 32
    # Grey levels: where the forward-backward check fails but the previous frame, moved by the flow
    # and given the current one's overall brightness, lands this close to it, the motion is trusted
    # too. The check fails wherever there is no texture to match both ways (a sky, a wall, a frame
    # fading in from black: Big Buck Bunny's opening passed it on a third at most), and there
    # a flow that reproduces the frame is as good as any.
    MATCHED = 6
    # Grey levels of spread (standard deviation): MATCHED, UNEXPLAINED and REPEATED hold for a frame
    # with this much contrast or more, and shrink with the spread of a flatter one. The network,
    # behind its instance normalisation, sees every frame at full contrast, so in a frame fading in
    # from black a change of a few levels is a new picture to it, not noise to average away (on a
    # photo fading in, the blend kept the first frames' noise-made strokes for a second without this).
    FULL_CONTRAST = 32
    # Grey levels: a frame whose every 16-px block differs from the last stylised frame by less than
    # this on average repeats it. Chaplin's repeats differ by at most 5 (compression noise), its
    # moving frames by 20 or more. The last stylised frame stays the reference, so a slow change
    # that adds up (a fade) is stylised once it shows. In a frame barely out of black the network
    # sees a new picture in a change of one or two levels: taken as a repeat of the black frame
    # before it, Big Buck Bunny's frame 7 (1.8 levels above black) was shown as the network's flat
    # grey for black (style gap 0.93 where its own strokes give 0.45).
    REPEATED = 6
    # Log of the contrast gain: a frame brightening faster than this is fading in (fade_discount).
    # Of the benchmark's clips, only the two fades have such frames.
    FADING = 0.02

    def __init__(self, strength: float, settings: FilterSettings | None = None) -> None:
        if not 0 <= strength < 1:
            raise ValueError("strength must be in [0, 1)")
        self.strength = strength
        self.settings = settings or FilterSettings()
        self._flow = FlowEstimator()
        self._grey: np.ndarray | None = None
        self._spread = (0.0, 0.0)  # `_grey`'s mean and standard deviation
        self._input: np.ndarray | None = None
        self._output: np.ndarray | None = None

    def steady(self, original: np.ndarray) -> tuple[np.ndarray | None, Motion | None]:
        """The network's input for the next frame ((H, W, 3) uint8 RGB), or None if it repeats the
        last one; and its motion from the previous frame (None at the first frame, a repeat, a cut
        or a change of size)."""
        current = grey(original)
        same_size = self._grey is not None and self._grey.shape == current.shape
        spread = mean_and_spread(current)
        contrast = min(1.0, spread[1] / self.FULL_CONTRAST)
        if same_size and block_difference(self._grey, current) <= self.REPEATED * contrast:
            return None, None
        motion = None
        if same_size:
            motion = self._flow.motion(self._grey, current)
            change = brightness_change(self._spread, spread)
            relight = partial(cv2.convertScaleAbs, **change)
            miss = cv2.absdiff(motion.warp(relight(self._grey)), current)
            trusted = motion.reliable | (miss < self.MATCHED * contrast)
            if trusted.mean() < MIN_RELIABLE:
                motion = None
            else:
                motion = replace(motion, reliable=trusted & (miss < self.UNEXPLAINED * contrast))
        self._grey, self._spread = current, spread
        if motion is None:
            self._input = original
        else:
            self._input = _mix(original, motion, relight(self._input), self._steadying(change["alpha"]))
        return self._input, motion

    def _steadying(self, gain: float) -> float:
        """The steadied input's weight in a frame whose contrast is `gain` times the last one's."""
        if math.log(gain) > self.FADING:
            return self.STEADY_INPUT / gain**self.settings.fade_discount
        return self.STEADY_INPUT

    def blend(self, stylised: np.ndarray | None, motion: Motion | None) -> np.ndarray:
        """The output for the frame `steady` gave `motion` for (None: the repeat it found, whose
        output is the last one); frames must come in order."""
        if stylised is None:
            assert self._output is not None, "a repeat of a frame not yet blended"
            return self._output
        if motion is not None and self._output is not None and self._output.shape == stylised.shape:
            blended = _mix(stylised, motion, self._output, self.strength)
            stylised = restore_contrast(blended, stylised, self.settings.contrast_restored)
        self._output = stylised
        return stylised


CONTRAST_WINDOW = 13  # px: the square whose contrast is restored, a few strokes wide


def restore_contrast(
    blended: np.ndarray,
    reference: np.ndarray,
    amount: float = CONTRAST_RESTORED,
    window: int = CONTRAST_WINDOW,
) -> np.ndarray:
    """`blended` with its local contrast raised towards `reference`'s: about its local mean, each
    channel's deviation scaled by 1 + amount (r - 1), r the ratio of local standard deviations
    (taken in [1, 2]: never lowered).

    A weighted average of two textures that do not line up has less variance than either; rescaling
    the deviations restores it without moving them, as variance-preserving blending does in
    texture synthesis (Heitz and Neyret 2018), here locally, since stroke contrast varies over the
    image. Where the two agreed the ratio is 1 and nothing changes; at amount 0 nothing does.
    """
    if not amount:  # a network that records none (`FilterSettings`): the moments are not needed
        return blended
    h, w = blended.shape[:2]
    mean, var_b = _local_moments(blended, window)
    _, var_r = _local_moments(reference, window)
    gain = 1 + amount * (np.clip(np.sqrt((var_r + 1) / (var_b + 1)), 1, 2) - 1)
    # mean + (b - mean) gain = b gain + mean (1 - gain): the smooth factors come from the coarse grid.
    up = partial(cv2.resize, dsize=(w, h), interpolation=cv2.INTER_LINEAR)
    out = cv2.add(cv2.multiply(blended.astype(np.float32), up(gain)), up(mean * (1 - gain)))
    return cv2.convertScaleAbs(out)


def _local_moments(img: np.ndarray, window: int, step: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Box mean and variance of each channel over the window, on a grid `step` times coarser:
    they are smooth at that scale, and full-size arithmetic would be most of the blend's time.
    Area-averaging is a box filter, so x and x² are averaged before the grid loses anything."""
    h, w = img.shape[:2]
    small, k = (max(1, w // step), max(1, h // step)), (max(1, window // step),) * 2
    x = img.astype(np.float32)
    mean = cv2.blur(cv2.resize(x, small, interpolation=cv2.INTER_AREA), k)
    square = cv2.blur(cv2.resize(x * x, small, interpolation=cv2.INTER_AREA), k)
    return mean, np.maximum(square - mean * mean, 0)


def mean_and_spread(grey_frame: np.ndarray) -> tuple[float, float]:
    """A grey frame's mean and standard deviation."""
    (mean,), (std,) = cv2.meanStdDev(grey_frame)
    return float(mean[0]), float(std[0])


def brightness_change(previous: tuple[float, float], current: tuple[float, float]) -> dict[str, float]:
    """The gain and offset (`cv2.convertScaleAbs`'s alpha and beta) that give the previous grey
    frame the current one's mean and spread (`mean_and_spread` of each): a fade or an exposure
    change, which no motion explains. The network, behind its instance normalisation, hardly sees
    it; the steadied input must follow it."""
    (m0, s0), (m1, s1) = previous, current
    gain = float(np.clip((s1 + 1) / (s0 + 1), 1 / 3, 3))  # +1: a black frame has no spread
    return {"alpha": gain, "beta": m1 - gain * m0}


def block_difference(a: np.ndarray, b: np.ndarray, block: int = 16) -> float:
    """The largest mean absolute difference of two grey frames over any `block`-px square: under
    `TemporalFilter.REPEATED`, the second repeats the first."""
    h, w = a.shape
    diff = cv2.absdiff(a, b).astype(np.float32)
    blocks = (max(1, w // block), max(1, h // block))
    return float(cv2.resize(diff, blocks, interpolation=cv2.INTER_AREA).max())


def _mix(current: np.ndarray, motion: Motion, previous: np.ndarray, strength: float) -> np.ndarray:
    """`current` blended with `previous` warped onto it, by `strength` where the motion is reliable."""
    weight = motion.weight * strength
    mixed = current.astype(np.float32) * (1 - weight) + motion.warp(previous).astype(np.float32) * weight
    return (mixed + 0.5).astype(np.uint8)
