"""Export a trained model to a self-describing ONNX file, and prove it computes what PyTorch does.

The torch.export-based exporter (`dynamo=True`, the default since PyTorch 2.9) is used: the legacy
TorchScript one is deprecated and gives a 5x larger graph. Batch, height and width are dynamic;
TransformerNet's branch-free pad-and-crop keeps odd sizes exact.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from . import __version__
from .errors import UserError
from .files import atomic_path
from .runtime import IO_CONVENTION, ONNX_FORMAT
from .transformer import load_model

OPSET = 18
FP32_TOLERANCE = 1e-3
FP16_TOLERANCE = 2e-2  # half precision keeps ~3 significant digits; 8-bit output needs 4e-3
PARITY_SIZES = ((256, 256), (301, 173))  # one odd, non-square size on purpose


class _HalfPrecision(nn.Module):
    """fp16 weights and activations inside, float32 image in and out: callers need not change."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.half()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.half()).float()


@dataclass
class ExportReport:
    path: Path
    max_abs_diff: dict[str, float]
    tolerance: float


def export_onnx(model: Path, out: Path, fp16: bool = False, overwrite: bool = False) -> ExportReport:
    """Write `out` (atomically) from the .pt `model`, then check it against PyTorch in ONNX Runtime."""
    model, out = Path(model), Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out}: already exists (use --overwrite to replace it)")
    if out.suffix.lower() != ".onnx":
        raise UserError(f"{out}: the output should be an .onnx file")
    net, record = load_model(model)
    module: nn.Module = _HalfPrecision(copy.deepcopy(net)) if fp16 else net
    proto = _export(module)
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
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"fast-nst style transfer network ({props['fast_nst.style']}). {IO_CONVENTION}."
    onnx.checker.check_model(proto, full_check=True)
    with atomic_path(out) as tmp:
        onnx.save(proto, tmp)
        diffs = parity(net, tmp)
        tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
        worst = max(diffs.values())
        if worst > tolerance:
            raise UserError(
                f"{out}: ONNX Runtime differs from PyTorch by {worst:.2e} (> {tolerance:g}); not written"
            )
    return ExportReport(out, diffs, tolerance)


def _export(module: nn.Module) -> onnx.ModelProto:
    example = torch.rand(1, 3, 64, 64)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    # The exporter reports its progress on stdout and warns about internals the user cannot act on.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logger.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                opset_version=OPSET,
                input_names=["image"],
                output_names=["stylized"],
                dynamic_shapes={"x": dims},
                verbose=False,
            )
        finally:
            logger.setLevel(level)
    proto = program.model_proto
    # The exporter names the output's sizes by the crop's symbolic formula; they equal the input's.
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    for i, name in ((0, "batch"), (2, "height"), (3, "width")):
        dims[i].dim_param = name
    return proto


def parity(net: nn.Module, onnx_path: Path) -> dict[str, float]:
    """Max |ONNX Runtime - PyTorch| on the CPU over real-photo inputs of PARITY_SIZES."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    diffs = {}
    for h, w in PARITY_SIZES:
        x = _smooth_noise(h, w)
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
