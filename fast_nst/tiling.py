"""Images too big to run in one piece, stylised in tiles: fixed-size tiles, each with a margin,
blended with weights that fall to zero at every inner tile edge, so no edge is ever visible."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

# Above this many pixels an image is stylised in tiles. Untiled, a width-32 network holds about
# 400 bytes of activations per pixel: 2048 x 2048 is ~1.7 GB, which any machine has to spare.
MAX_UNTILED_PIXELS = 2048 * 2048
DEFAULT_TILE = 1024
# Wider than the network's receptive field (~100 px), so a tile's core never sees its edge.
DEFAULT_OVERLAP = 128
ALIGN = 4  # TransformerNet's total stride
# The InstanceNorm statistics of tiles are measured on this many pixels of the image at most
# (at 6000x4000: 12 patches of 512 x 512, 13% of it); peak memory follows it.
STATS_PIXELS = 12 * 512 * 512
STATS_PATCH = 512


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, size) of the tiles covering `length` pixels, every start a multiple of ALIGN: the
    network's two stride-2 layers see a tile on the same pixel grid as the whole image (shifted by
    1-3 px, the same photo comes out with other strokes: 4-8/255 on average)."""
    if length <= tile:
        return [(0, length)]
    step = max(ALIGN, (tile - overlap) // ALIGN * ALIGN)
    last = (length - tile) // ALIGN * ALIGN  # the last tile runs to the end: up to ALIGN - 1 px longer
    starts = list(range(0, last, step))
    return [(s, tile) for s in starts] + [(last, length - last)]


def stats_sample(image: Tensor, pixels: int = STATS_PIXELS, patch: int = STATS_PATCH) -> Tensor:
    """The whole image (1, 3, H, W) if it has at most `pixels`, else a batch of square patches of
    it at full resolution, spread evenly over it on the stride grid, `pixels` in all."""
    _, _, h, w = image.shape
    if h * w <= pixels:
        return image
    patch = min(patch, h, w) // ALIGN * ALIGN  # a panorama's height may be less
    n = pixels // (patch * patch)
    rows = max(1, min(n, round((n * h / w) ** 0.5)))
    ys = torch.linspace(0, h - patch, rows).long() // ALIGN * ALIGN
    xs = torch.linspace(0, w - patch, n // rows).long() // ALIGN * ALIGN
    return torch.cat([image[..., y : y + patch, x : x + patch] for y in ys.tolist() for x in xs.tolist()])


def _ramp(size: int, overlap: int, rise: bool, fall: bool) -> Tensor:
    """1-D blend weight: climbs over `overlap` px at a rising edge, falls at a falling one."""
    w = torch.ones(size)
    ramp = (torch.arange(min(overlap, size)) + 0.5) / overlap
    if rise:
        w[: ramp.numel()] = torch.minimum(w[: ramp.numel()], ramp)
    if fall:
        w[size - ramp.numel() :] = torch.minimum(w[size - ramp.numel() :], ramp.flip(0))
    return w


def _tiles(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of each tile covering an h x w image."""
    return [(y, x, th, tw) for y, th in _spans(h, tile, overlap) for x, tw in _spans(w, tile, overlap)]


def stylize_tiled(run: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int) -> Tensor:
    """One image (1, 3, H, W), stylised one tile at a time, so memory follows the tile size.

    Tiles differ near their edges (reflection padding instead of the neighbouring pixels) and,
    unless `run` fixes the InstanceNorm statistics, in tone; blending the overlap with a linear
    ramp turns what differences remain into a gradient across `overlap` pixels, never an edge.
    """
    _, _, h, w = x.shape
    overlap = min(overlap, tile // 2)
    out = torch.zeros(3, h, w)
    weight = torch.zeros(1, h, w)
    for t, s, th, tw in _tiles(h, w, tile, overlap):
        y = run(x[:, :, t : t + th, s : s + tw])[0]
        wy = _ramp(th, overlap, rise=t > 0, fall=t + th < h)
        wx = _ramp(tw, overlap, rise=s > 0, fall=s + tw < w)
        wt = wy[:, None] * wx[None, :]
        out[:, t : t + th, s : s + tw] += y * wt
        weight[:, t : t + th, s : s + tw] += wt
    return out.div_(weight).unsqueeze(0)
