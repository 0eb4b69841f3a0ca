"""Export a trained model to a self-describing ONNX file, and prove it computes what PyTorch does.

The graph is written directly from the network's weights (`to_onnx`), not traced: it takes a
tenth of a second where torch.onnx's exporter took ten (the runtime exports every .pt it runs on
a CPU, built-in styles included, on first use), and it holds only what the network computes:
the phase-decomposed layers' kernels are stored precomputed, so no weight arithmetic is left for
a runtime to constant-fold. Batch, height and width are dynamic; odd sizes are exact.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import Tensor, nn

from . import __version__
from .config import FILTER_SETTINGS
from .errors import UserError
from .files import atomic_path, refuse_to_replace
from .transformer import (
    PHASES,
    ConvNormReLU,
    PhaseConv2d,
    ResidualBlock,
    TransformerNet,
    UpsampleConv2d,
    load_model,
    phase_major_kernels,
)

ONNX_FORMAT = "fast-nst-onnx"
IO_CONVENTION = "input and output: (batch, 3, height, width) float32 RGB in [0, 1]"
OPSET = 18
IR_VERSION = 8  # what opset 18 came with (onnx 1.13)
FP32_TOLERANCE = 1e-3
FP16_TOLERANCE = 2e-2  # half precision keeps ~3 significant digits; 8-bit output needs 4e-3
PARITY_SIZES = ((256, 256), (301, 173))  # one odd, non-square size on purpose


@dataclass
class ExportReport:
    path: Path
    max_abs_diff: dict[str, float]
    tolerance: float
    operators: dict[str, int]  # operator type -> nodes, in the order they first appear


def export_onnx(
    model: Path,
    out: Path,
    fp16: bool = False,
    overwrite: bool = False,
    size: tuple[int, int] | None = None,
    batch: int | None = None,
) -> ExportReport:
    """Write `out` (atomically) from the .pt `model`, then check it against PyTorch in ONNX Runtime.

    size (height, width) and batch: a fixed-shape graph (see `to_onnx`), checked at that shape.
    """
    model, out = Path(model), Path(out)
    refuse_to_replace(out, overwrite)
    if out.suffix.lower() != ".onnx":
        raise UserError(f"{out}: the output should be an .onnx file")
    if (size is not None and min(size) < 5) or (batch is not None and batch < 1):
        raise UserError("a fixed size must be at least 5x5 pixels, a fixed batch at least 1")
    net, record = load_model(model)
    proto = to_onnx(net, fp16, size, batch)
    meta = record.get("meta", {})
    props = {
        "fast_nst.format": ONNX_FORMAT,
        "fast_nst.style": str(meta.get("style") or model.stem),
        "fast_nst.config": json.dumps(meta.get("config", meta), default=str),
        "fast_nst.version": __version__,
        "fast_nst.trained_with": str(record.get("version")),
        "fast_nst.io": IO_CONVENTION,
        "fast_nst.precision": "fp16" if fp16 else "fp32",
    }
    for name in FILTER_SETTINGS:
        if name in meta:
            props[f"fast_nst.{name}"] = str(meta[name])
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"fast-nst style transfer network ({props['fast_nst.style']}). {IO_CONVENTION}."
    onnx.checker.check_model(proto, full_check=True)
    with atomic_path(out) as tmp:
        onnx.save(proto, tmp)
        diffs = parity(net, tmp, [size] if size else PARITY_SIZES, batch or 1)
        tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
        worst = max(diffs.values())
        if worst > tolerance:
            raise UserError(
                f"{out}: ONNX Runtime differs from PyTorch by {worst:.2e} (> {tolerance:g}); not written"
            )
    operators: dict[str, int] = {}
    for node in proto.graph.node:
        operators[node.op_type] = operators.get(node.op_type, 0) + 1
    return ExportReport(out, diffs, tolerance, operators)


class _Graph:
    """An ONNX graph under construction: nodes in order, weights as initializers."""

    def __init__(self, dtype: np.dtype, size: tuple[int, int] | None) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.dtype = dtype
        self.size = size  # (height, width) of a fixed-size graph: shapes are constants, no Shape ops

    def op(self, op_type: str, *inputs: str, **attrs: object) -> str:
        out = f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def const(self, value: Tensor | list[int], name: str) -> str:
        """A weight in the graph's precision, or (a list) an int64 shape constant."""
        if isinstance(value, list):
            array = np.array(value, dtype=np.int64)
        else:
            array = value.detach().float().numpy().astype(self.dtype)
        self.weights.append(numpy_helper.from_array(array, name))
        return name

    def conv(self, x: str, weight: Tensor, bias: Tensor, name: str, stride: int = 1) -> str:
        return self.op("Conv", x, self.const(weight, f"{name}.weight"), self.const(bias, f"{name}.bias"),
                       strides=[stride, stride])  # fmt: skip

    def pad(self, x: str, pads: list[int], mode: str) -> str:
        """pads as (top, bottom, left, right), on the two spatial axes."""
        top, bottom, left, right = pads
        return self.op("Pad", x, self.const([0, 0, top, left, 0, 0, bottom, right], f"pad{len(self.nodes)}"),
                       mode=mode)  # fmt: skip

    def conv_layer(self, conv: nn.Conv2d, x: str, name: str) -> str:
        """A plain reflect-padded convolution (what `_conv` builds)."""
        p = conv.padding[0]
        return self.conv(self.pad(x, [p] * 4, "reflect"), conv.weight, conv.bias, name, conv.stride[0])

    def interleave(self, x: str, scale: int) -> str:
        """(N, 4C, H, W) phase-major -> (N, C, 2H, 2W), as `transformer._interleave`; H x W is the
        image's padded size / `scale`.

        DepthToSpace (mode DCR) in one operator, but as two transposes that each move one axis,
        which ONNX Runtime runs faster (1080p, whole network, one run: 1834 ms against 1926 ms).
        """
        i = len(self.nodes)
        if self.size is not None:
            h, w = (-(-side // 4) * 4 // scale for side in self.size)
            split, rows_shape = self.const([0, 2, 2, -1, h, w], f"d2s{i}.split"), [0, 0, -1, 2 * w]
        else:
            hw = self.op(
                "Slice", self.op("Shape", x), self.const([2], f"d2s{i}.hw0"), self.const([4], f"d2s{i}.hw1")
            )
            split = self.op("Concat", self.const([0, 2, 2, -1], f"d2s{i}.split"), hw, axis=0)
        cols = self.op("Transpose", self.op("Reshape", x, split), perm=[0, 1, 3, 4, 5, 2])  # N p C H W q
        cols = self.op("Reshape", cols, self.const([0, 0, 0, 0, -1], f"d2s{i}.cols"))  # N p C H 2W
        rows = self.op("Transpose", cols, perm=[0, 2, 3, 1, 4])  # N C H p 2W
        if self.size is not None:
            return self.op("Reshape", rows, self.const(rows_shape, f"d2s{i}.rows"))
        w2 = self.op(
            "Slice", self.op("Shape", rows), self.const([4], f"d2s{i}.w0"), self.const([5], f"d2s{i}.w1")
        )
        return self.op("Reshape", rows, self.op("Concat", self.const([0, 0, -1], f"d2s{i}.rows"), w2, axis=0))

    def norm(self, norm: nn.InstanceNorm2d, x: str, name: str) -> str:
        scale, bias = self.const(norm.weight, f"{name}.weight"), self.const(norm.bias, f"{name}.bias")
        return self.op("InstanceNormalization", x, scale, bias, epsilon=norm.eps)


def to_onnx(
    net: TransformerNet, fp16: bool = False, size: tuple[int, int] | None = None, batch: int | None = None
) -> onnx.ModelProto:
    """The network as an ONNX graph, layer by layer as `TransformerNet.forward` computes it.

    fp16: half-precision weights and activations inside; the image stays float32 in and out.
    size, batch: fix the input's (height, width) and batch size, for runtimes and converters that
    want static shapes; every shape in the graph is then a constant (no Shape, Neg or Mod).
    """
    g = _Graph(np.dtype(np.float16 if fp16 else np.float32), size)
    x = g.op("Cast", "image", to=TensorProto.FLOAT16) if fp16 else "image"
    # Reflect-pad to a multiple of 4 ((-size) mod 4 on the runtime shape), crop back at the end.
    unaligned = size is None or size[0] % 4 or size[1] % 4
    if size is not None:
        hw = g.const(list(size), "hw") if unaligned else ""
        if unaligned:
            x = g.pad(x, [0, -size[0] % 4, 0, -size[1] % 4], "reflect")
    else:
        hw = g.op("Slice", g.op("Shape", "image"), g.const([2], "hw_start"), g.const([4], "hw_end"))
        extra = g.op("Mod", g.op("Neg", hw), g.const([4, 4], "multiple"))
        x = g.op("Pad", x, g.op("Concat", g.const([0] * 6, "no_pad"), extra, axis=0), mode="reflect")
    scale = 1  # the padded image's size over the current feature map's
    for i, layer in enumerate(net.body):
        name = f"body.{i}"
        if isinstance(layer, ResidualBlock):
            conv1, norm1, _, conv2, norm2 = layer.body
            y = g.op("Relu", g.norm(norm1, g.conv_layer(conv1, x, f"{name}.conv1"), f"{name}.norm1"))
            x = g.op("Add", x, g.norm(norm2, g.conv_layer(conv2, y, f"{name}.conv2"), f"{name}.norm2"))
        elif isinstance(layer, ConvNormReLU):
            conv, norm = layer[-3], layer[-2]
            if isinstance(conv, UpsampleConv2d):
                x = _upsample_conv(g, conv, x, f"{name}.conv", scale)
                scale //= 2
            else:
                x = g.conv_layer(conv, x, f"{name}.conv")
                scale *= conv.stride[0]
            x = g.op("Relu", g.norm(norm, x, f"{name}.norm"))
        elif isinstance(layer, PhaseConv2d):
            weight, bias = phase_major_kernels(layer)
            p = layer.kernel_size[0] // 2
            x = g.conv(g.pad(x, [p, p + 1, p, p + 1], "reflect"), weight, bias, name, stride=2)
            x = g.interleave(x, scale=2)
        else:
            raise TypeError(f"no ONNX form for {type(layer).__name__}")
    y = g.op("Sigmoid", x)
    if unaligned:
        y = g.op("Slice", y, g.const([0, 0], "crop_start"), hw, g.const([2, 3], "crop_axes"))
    if fp16:
        y = g.op("Cast", y, to=TensorProto.FLOAT)
    g.nodes[-1].output[0] = "stylized"
    dims = [batch or "batch", 3, *(size or ("height", "width"))]
    graph = helper.make_graph(
        g.nodes,
        "fast_nst",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, dims)],
        g.weights,
    )
    opset = [helper.make_opsetid("", OPSET)]
    # The IR version of the opset, not onnx's newest: older runtimes refuse a newer IR.
    return helper.make_model(graph, opset_imports=opset, ir_version=IR_VERSION, producer_name="fast-nst")


def _upsample_conv(g: _Graph, conv: UpsampleConv2d, x: str, name: str, scale: int) -> str:
    """`UpsampleConv2d`: the 2x2 phase convolutions in one Conv, each phase cut to its offset, then
    interleaved. `x` is at 1/`scale` of the padded image's size."""
    weight, bias = phase_major_kernels(conv)
    y = g.conv(g.pad(x, [1] * 4, "edge"), weight, bias, name)
    c, end = conv.out_channels, np.iinfo(np.int64).max
    phases = []
    for i, (p, q) in enumerate(PHASES):
        starts = g.const([i * c, p, q], f"{name}.phase{i}_start")
        ends = g.const([(i + 1) * c, end if p else -1, end if q else -1], f"{name}.phase{i}_end")
        phases.append(g.op("Slice", y, starts, ends, g.const([1, 2, 3], f"{name}.phase{i}_axes")))
    return g.interleave(g.op("Concat", *phases, axis=1), scale)


def parity(net: nn.Module, onnx_path: Path, sizes: Iterable[tuple[int, int]], batch: int) -> dict[str, float]:
    """Max |ONNX Runtime - PyTorch| on the CPU over photo-like inputs of `sizes` (height, width)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    diffs = {}
    for h, w in sizes:
        x = _smooth_noise(h, w).expand(batch, -1, -1, -1).contiguous()
        with torch.inference_mode():
            expected = net.float()(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        diffs[f"{w}x{h}"] = float(np.abs(got.astype(np.float32) - expected).max())
    return diffs


def _smooth_noise(h: int, w: int) -> Tensor:
    """Photo-like input (smooth, not per-pixel noise), the same on every run."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def cache_dir() -> Path:
    """$FAST_NST_CACHE, else the platform's user cache folder."""
    if "FAST_NST_CACHE" in os.environ:
        return Path(os.environ["FAST_NST_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fast-nst"


def cached_onnx(model: Path, rebuild: bool = False) -> Path:
    """The ONNX export of a .pt model, made (and parity-checked) on first use, then reused.

    Keyed by the model file's contents and our version, so a retrained or updated model never
    picks up a stale export. rebuild: export again over a cached file that would not load.
    """
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:20]
    path = cache_dir() / "onnx" / f"{model.stem}-{digest}-{__version__}.onnx"
    if rebuild or not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(model, path, overwrite=True)
    return path
