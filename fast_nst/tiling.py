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


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


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
    ys, xs = _tile_starts(h, tile, overlap), _tile_starts(w, tile, overlap)
    return [(y, x, min(tile, h), min(tile, w)) for y in ys for x in xs]


def stylize_tiled(run: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int, batch: int) -> Tensor:
    """One image (1, 3, H, W), stylised tile by tile; memory bounded by the tile size.

    Tiles differ near their edges (reflection padding instead of the neighbouring pixels) and,
    unless `run` fixes the InstanceNorm statistics, in tone; blending the overlap with a linear
    ramp turns what differences remain into a gradient across `overlap` pixels, never an edge.
    """
    _, _, h, w = x.shape
    overlap = min(overlap, tile // 2)
    out = torch.zeros(3, h, w)
    weight = torch.zeros(1, h, w)
    boxes = _tiles(h, w, tile, overlap)
    for i in range(0, len(boxes), batch):
        group = boxes[i : i + batch]
        ys = run(torch.cat([x[:, :, t : t + th, s : s + tw] for t, s, th, tw in group]))
        for (t, s, th, tw), y in zip(group, ys, strict=True):
            wy = _ramp(th, overlap, rise=t > 0, fall=t + th < h)
            wx = _ramp(tw, overlap, rise=s > 0, fall=s + tw < w)
            wt = wy[:, None] * wx[None, :]
            out[:, t : t + th, s : s + tw] += y * wt
            weight[:, t : t + th, s : s + tw] += wt
    return out.div_(weight).unsqueeze(0)
