"""ONNX export: a checked, self-describing file that computes what PyTorch computes, at any size."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import assert_one_line_error, run_cli
from helpers_runtime import make_model

from fast_nst.export import export_onnx
from fast_nst.files import load_image_tensor
from fast_nst.transformer import load_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    model = make_model(folder / "seeded.pt")
    return model, export_onnx(model, folder / "seeded.onnx")


def test_parity_with_pytorch_at_two_sizes_one_odd(exported, photo):
    model, report = exported
    assert len(report.max_abs_diff) == 2 and max(report.max_abs_diff.values()) < 1e-3
    net, _ = load_model(model)
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    for size in (96, 151):  # real photos, batch of 2, one size odd and not a multiple of 4
        x = load_image_tensor(photo, size)
        x = torch.cat([x, x.flip(-1)])
        with torch.no_grad():
            expected = net(x).numpy()
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4


def test_file_describes_itself(exported):
    _, report = exported
    proto = onnx.load(report.path)
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["fast_nst.format"] == "fast-nst-onnx" and meta["fast_nst.style"] == "seeded"
    assert json.loads(meta["fast_nst.config"]) == {"style": "seeded"}
    assert "[0, 1]" in meta["fast_nst.io"] and meta["fast_nst.version"]
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    for value in (proto.graph.input[0], proto.graph.output[0]):
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        assert dims == ["batch", 3, "height", "width"]


def test_fp16_model_keeps_float32_io(exported, tmp_path):
    model, full = exported
    report = export_onnx(model, tmp_path / "half.onnx", fp16=True)
    assert max(report.max_abs_diff.values()) < 2e-2
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == session.get_outputs()[0].type == "tensor(float)"
    assert report.path.stat().st_size < 0.6 * full.path.stat().st_size


def test_cli_export_refuses_to_overwrite(exported):
    model, report = exported
    result = run_cli("export", str(model), "-o", str(report.path))
    assert_one_line_error(result, "seeded.onnx: already exists", "--overwrite")


def test_a_builtin_style_exports_by_name_into_the_current_folder(tmp_path):
    result = run_cli("export", "mosaic_fast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    proto = onnx.load(tmp_path / "mosaic_fast.onnx")
    assert {p.key: p.value for p in proto.metadata_props}["fast_nst.style"] == "mosaic_fast"
    assert_one_line_error(run_cli("export", "picasso", cwd=tmp_path), "picasso: no such built-in style")


NETWORK_OPERATORS = {"Conv", "InstanceNormalization", "Pad", "Relu", "Add", "Sigmoid", "Reshape", "Transpose",
                     "Slice", "Concat", "Shape", "Neg", "Mod"}  # fmt: skip


def test_graph_holds_only_the_network_and_loads_without_a_warning(exported):
    """No weight arithmetic left for a runtime to fold (the traced export had Einsum on constants,
    and ONNX Runtime warned four times on every load)."""
    _, report = exported
    assert {n.op_type for n in onnx.load(report.path).graph.node} <= NETWORK_OPERATORS
    code = (
        "import onnxruntime as o; s = o.SessionOptions(); s.log_severity_level = 2; "
        f"o.InferenceSession({str(report.path)!r}, s, providers=['CPUExecutionProvider'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_fixed_shape_export_has_only_constant_shapes_and_runs_at_its_size(exported, tmp_path, photo):
    """`--size 96x64 --batch 2`: no Shape, Neg or Mod left (converters for TensorRT, Core ML and
    TFLite want static graphs); the same pixels as PyTorch; the operators are printed."""
    model, _ = exported
    out = tmp_path / "fixed.onnx"
    result = run_cli("export", str(model), "-o", str(out), "--size", "93x67", "--batch", "2")
    assert result.returncode == 0, result.stderr
    assert (
        "93x67: " in result.stdout and "operators: Pad 17, Conv 16, InstanceNormalization 15" in result.stdout
    )
    proto = onnx.load(out)
    operators = {n.op_type for n in proto.graph.node}
    assert operators <= NETWORK_OPERATORS - {"Shape", "Neg", "Mod"}
    dims = [
        [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (proto.graph.input[0], proto.graph.output[0])
    ]
    assert dims == [[2, 3, 67, 93]] * 2
    x = load_image_tensor(photo)[..., :67, :93].expand(2, -1, -1, -1).contiguous()
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    net, _ = load_model(model)
    with torch.inference_mode():
        assert np.abs(got - net(x).numpy()).max() < 1e-4
    assert_one_line_error(run_cli("export", str(model), "-o", str(tmp_path / "b.onnx"), "--size", "93by67"),
                          "--size 93by67: expected WIDTHxHEIGHT")  # fmt: skip
