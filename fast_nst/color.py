"""Keep the photo's colours: the stylised luminance with the original's chrominance.

Gatys et al. (2017), "luminance-only transfer" done as a post-process: style lives mostly in
luminance (strokes, texture, contrast), colour in the chroma channels, so swapping in the
original's Cb/Cr keeps the painting's texture and the photo's palette. Full-range BT.601 YCbCr, the
same matrix as PIL's and JPEG's, so PIL images and tensors give the same result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .files import pil_to_tensor, tensor_to_pil

_RGB_TO_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)
_CHROMA_OFFSET = torch.tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)


def _to_ycbcr(rgb: Tensor) -> Tensor:
    m = _RGB_TO_YCBCR.to(rgb)
    return torch.einsum("ij,bjhw->bihw", m, rgb) + _CHROMA_OFFSET.to(rgb)


def _to_rgb(ycbcr: Tensor) -> Tensor:
    m = torch.linalg.inv(_RGB_TO_YCBCR.double()).to(ycbcr)
    return torch.einsum("ij,bjhw->bihw", m, ycbcr - _CHROMA_OFFSET.to(ycbcr)).clamp(0, 1)


def preserve_color(stylized: Tensor | Image.Image, original: Tensor | Image.Image) -> Tensor | Image.Image:
    """`stylized`'s luminance with `original`'s colour, in the type of `stylized`.

    Tensors are (B, 3, H, W) or (3, H, W) RGB in [0, 1]; the original is resized (bilinear) to the
    stylised image's size when they differ, as a model's output may be a few pixels off its input.
    """
    if isinstance(stylized, Image.Image):
        original = original if isinstance(original, Tensor) else pil_to_tensor(original)
        return tensor_to_pil(preserve_color(pil_to_tensor(stylized), original))
    if isinstance(original, Image.Image):
        original = pil_to_tensor(original)
    batched = stylized.dim() == 4
    s = stylized if batched else stylized.unsqueeze(0)
    o = (original if original.dim() == 4 else original.unsqueeze(0)).to(s)
    if o.shape[-2:] != s.shape[-2:]:
        o = F.interpolate(o, size=s.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    ycbcr = torch.cat([_to_ycbcr(s)[:, :1], _to_ycbcr(o)[:, 1:].expand(s.shape[0], -1, -1, -1)], dim=1)
    out = _to_rgb(ycbcr)
    return out if batched else out.squeeze(0)
