"""The image transformation network of Johnson et al. (2016), with the fixes the field settled on.

Instance normalisation instead of batch norm (Ulyanov et al.), reflection padding instead of zero
padding (no dark borders), nearest-neighbour upsampling followed by a convolution instead of
transposed convolutions (no checkerboard artefacts, Odena et al.), and a sigmoid output so the
image is RGB in [0, 1] like the input.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import UserError
from .files import torch_load


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, padding_mode="reflect")


class ConvNormReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, upsample: bool = False):
        # With upsampling, index 0 held the nn.Upsample that UpsampleConv2d now folds in; the
        # Identity keeps the parameter names, so earlier model files load unchanged.
        conv = UpsampleConv2d(c_in, c_out, kernel) if upsample else _conv(c_in, c_out, kernel, stride)
        layers = [nn.Identity()] if upsample else []
        super().__init__(*layers, conv, _norm(c_out), nn.ReLU(inplace=True))

    def forward(self, x: Tensor, plain: bool = False) -> Tensor:
        *_, conv, norm, relu = self
        return relu(norm(conv(x, plain) if isinstance(conv, UpsampleConv2d) else conv(x)))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, 3),
            _norm(channels),
            nn.ReLU(inplace=True),
            _conv(channels, channels, 3),
            _norm(channels),
        )

    def forward(self, x: Tensor, plain: bool = False) -> Tensor:
        return x + self.body(x)


# Two layers are computed in a cheaper form of the same function. Each keeps the paper's form too,
# readable beside the fast one: `TransformerNet(x, plain=True)` runs the whole network that way,
# and test_fast_paths checks that both give the same image. Both fast forms produce, per output
# channel, its four 2x2 pixel phases at half resolution and then interleave them. Channels are
# phase-major, (row phase, column phase, channel): the layout of ONNX's DepthToSpace in DCR mode
# (the exported graph spells it as two faster transposes).

PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, column) offsets, in channel order


def _interleave(phases: Tensor) -> Tensor:
    """(N, 4C, H, W) phase-major -> (N, C, 2H, 2W): DepthToSpace(blocksize=2, mode="DCR")."""
    n, c4, h, w = phases.shape
    c = c4 // 4
    return phases.reshape(n, 2, 2, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, 2 * h, 2 * w)


def phase_major_kernels(conv: UpsampleConv2d | PhaseConv2d) -> tuple[Tensor, Tensor]:
    """The kernels and biases the fast form of `conv` runs, phase-major (4 x out_channels)."""
    if isinstance(conv, UpsampleConv2d):
        weight = torch.einsum("pij,ocjl,qkl->pqocik", conv.taps, conv.weight, conv.taps)
        return weight.reshape(4 * conv.out_channels, conv.in_channels, 2, 2), conv.bias.repeat(4)
    # Phase (p, q) is the kernel shifted by (p, q) inside a (k+1)x(k+1) window.
    phases = [F.pad(conv.weight, (q, 1 - q, p, 1 - p)) for p, q in PHASES]
    return torch.cat(phases), conv.bias.repeat(4)


class UpsampleConv2d(nn.Conv2d):
    """Nearest-neighbour 2x upsampling, then a 3x3 reflect-padded convolution: at low resolution.

    Each output pixel's 3x3 window over the upsampled map covers only 2x2 distinct input pixels,
    so each pixel phase is a 2x2 convolution of the input (reflect padding of the upsampled map
    is replicate padding of the input): 2.25x fewer multiply-adds, and no 4x larger map to build.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        if kernel != 3:
            raise ValueError("UpsampleConv2d is written for 3x3 kernels")
        super().__init__(c_in, c_out, kernel)
        # Which of the 3 taps of the upsampled window fall on each of 2 input pixels, per phase.
        taps = torch.tensor([[[1.0, 0, 0], [0, 1, 1]], [[1.0, 1, 0], [0, 0, 1]]])
        self.register_buffer("taps", taps, persistent=False)

    def forward(self, x: Tensor, plain: bool = False) -> Tensor:
        if plain:  # the paper's layer as written: a 4x larger map, then a full-size convolution
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.weight, self.bias)
        h, w, c = x.shape[-2], x.shape[-1], self.out_channels
        y = F.conv2d(_replicate_pad(x), *phase_major_kernels(self))
        phases = [y[:, i * c : (i + 1) * c, p : p + h, q : q + w] for i, (p, q) in enumerate(PHASES)]
        return _interleave(torch.cat(phases, 1))


def _replicate_pad(x: Tensor) -> Tensor:
    """`F.pad(x, (1, 1, 1, 1), mode="replicate")`, which torch 2.13's inductor fails to compile
    after a pixel shuffle ("vr must not be None")."""
    x = torch.cat([x[..., :1, :], x, x[..., -1:, :]], dim=-2)
    return torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)


class PhaseConv2d(nn.Conv2d):
    """The output convolution (few channels, stride 1, reflect padding), computed by pixel phases.

    CPU kernels (oneDNN, ONNX Runtime's NCHWc) compute output channels in blocks of 8 or 16, so
    a 32-to-3 9x9 convolution pays for 8-16 channels to make 3 and was a fifth of ONNX Runtime's
    time at 1080p. As a stride-2 convolution whose 4x as many outputs are the 2x2 pixel phases
    (Shi et al. 2016), it is 12 channels on a quarter of the pixels: 2x faster. Needs even input
    sizes (TransformerNet pads to a multiple of 4).
    """

    def forward(self, x: Tensor, plain: bool = False) -> Tensor:
        pad = self.kernel_size[0] // 2
        if plain:  # the paper's layer: a 9x9 convolution making 3 channels at full resolution
            return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), self.weight, self.bias)
        x = F.pad(x, (pad, pad + 1, pad, pad + 1), mode="reflect")
        return _interleave(F.conv2d(x, *phase_major_kernels(self), stride=2))


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class TransformerNet(nn.Module):
    """Image in, stylised image out; both (B, 3, H, W) RGB in [0, 1], any H and W.

    `width` is the channel count of the first layer (32 in the paper; 16 does 3.5x fewer multiply-adds).
    """

    def __init__(self, width: int = 32, n_residual: int = 5) -> None:
        super().__init__()
        if width < 1 or n_residual < 0:
            raise ValueError("width must be >= 1 and n_residual >= 0")
        self.width, self.n_residual = width, n_residual
        w = width
        self.body = nn.Sequential(
            ConvNormReLU(3, w, 9),
            ConvNormReLU(w, 2 * w, 3, stride=2),
            ConvNormReLU(2 * w, 4 * w, 3, stride=2),
            *(ResidualBlock(4 * w) for _ in range(n_residual)),
            ConvNormReLU(4 * w, 2 * w, 3, upsample=True),
            ConvNormReLU(2 * w, w, 3, upsample=True),
            PhaseConv2d(w, 3, 9),
        )

    def forward(self, x: Tensor, plain: bool = False) -> Tensor:
        """plain: every layer in the paper's form instead of its fast one (the same function)."""
        h, w = x.shape[-2:]
        # Two stride-2 convolutions and two 2x upsamplings: reflect-pad to a multiple of 4 and crop
        # back. Branch-free (a pad of 0 is a no-op) so the ONNX export keeps dynamic H and W.
        x = F.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect")
        for layer in self.body:
            x = layer(x, plain)
        return x.sigmoid()[..., :h, :w]


MODEL_FORMAT = "fast-nst-model"
CHECKPOINT_FORMAT = "fast-nst-checkpoint"


def model_record(net: TransformerNet, meta: dict, half: bool = False) -> dict:
    """What a model file holds: weights plus enough to rebuild the net and say where it came from.

    Plain tensors, strings and numbers only, so it loads with `torch.load(weights_only=True)`.
    half: store the weights as float16, half the bytes (how the built-in styles ship); loading
    widens them back to float32, and the stylised images differ by under 1/255.
    """
    from . import __version__

    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to("cpu", dtype, copy=True) for k, v in net.state_dict().items()}
    arch = {"width": net.width, "n_residual": net.n_residual}
    return {"format": MODEL_FORMAT, "version": __version__, "arch": arch, "meta": meta, "state_dict": state}


def net_from_record(record: object, source: str) -> TransformerNet:
    """Rebuild the network from a loaded model record; `UserError` if it is not one of ours."""
    if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise UserError(f"{source}: not a fast-nst model file (no '{MODEL_FORMAT}' record)")
    net = TransformerNet(**record["arch"])
    try:
        net.load_state_dict(record["state_dict"])
    except RuntimeError as e:
        raise UserError(f"{source}: weights do not fit the network ({str(e).splitlines()[0]})") from None
    return net.eval().requires_grad_(False)


def load_model(path: Path) -> tuple[TransformerNet, dict]:
    """Load a model file written by `fast-nst train`: (network in eval mode, its record).

    Weights only: a pickle that would run code when loaded is refused, never executed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    record = torch_load(path, "PyTorch model file")
    if isinstance(record, dict) and record.get("format") == CHECKPOINT_FORMAT:
        record = _checkpoint_as_record(record)
    return net_from_record(record, str(path)), record


def _checkpoint_as_record(ckpt: dict) -> dict:
    """A training checkpoint read as a model file, so a run can be tried out while it trains."""
    cfg = ckpt["config"]
    state = ckpt["model"]
    meta = {"style": Path(cfg["style"]).stem, "steps": ckpt["step"], "config": cfg}
    return {
        "format": MODEL_FORMAT,
        "version": None,
        "arch": {"width": cfg["width"], "n_residual": cfg.get("residual_blocks", 5)},
        "meta": meta,
        "state_dict": state,
    }
