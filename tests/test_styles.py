"""Built-in styles: shipped inside the package, found by name, the same in ONNX and PyTorch."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, run_cli
from PIL import Image

from fast_nst.errors import UserError
from fast_nst.export import FP32_TOLERANCE
from fast_nst.files import checksum, load_image_tensor
from fast_nst.runtime import Stylizer
from fast_nst.styles import builtin_style, builtin_styles

ROOT = Path(__file__).resolve().parents[1]
# Every style models/README.md documents.
SHIPPED = ("mosaic", "mosaic_light", "mosaic_fast", "candy", "starry_night", "udnie", "wave", "the_scream")


def test_the_documented_styles_are_installed():
    styles = builtin_styles()
    assert set(SHIPPED) <= set(styles)
    for style in styles.values():
        assert style.quality["style_gap"] > 0 and style.quality["content_err"] > 0
        assert style.painting and style.licence


@pytest.mark.parametrize("name", SHIPPED)
def test_onnx_and_pt_give_the_same_image(name, photo):
    """A style ships as one fp16 .pt; on a CPU it runs through its ONNX export, made on first use."""
    x = load_image_tensor(photo)
    onnx = Stylizer.load(name, device="cpu")
    pt = Stylizer.load(name, device="cpu", backend="torch")
    assert onnx.backend.name == "onnxruntime" and pt.backend.name == "torch"
    assert (onnx(x) - pt(x)).abs().max() < FP32_TOLERANCE
    assert onnx.style == name
    record = torch.load(builtin_style(name).pt, weights_only=True)
    assert {w.dtype for w in record["state_dict"].values()} == {torch.float16}
    assert record["sha256"] == checksum(record)  # the file checks itself when loaded


def test_the_shipped_models_fit_the_gpu_machine():
    """The GPU machine takes 64 MiB in all: the repository's files must leave room for the VGG19
    weights and a training set (tools/gpu/prepare.sh)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    if not listed.stdout:
        pytest.skip("not a git checkout")
    files = [ROOT / f for f in listed.stdout.decode().split("\0") if f]
    assert sum(f.stat().st_size for f in files if f.is_file()) <= 24 * 2**20


def test_unknown_style_lists_the_valid_ones():
    with pytest.raises(UserError, match="no such built-in style") as e:
        Stylizer.load("picasso")
    assert all(name in str(e.value) for name in SHIPPED)
    result = run_cli("stylize", "photo.jpg", "--style", "picasso")
    assert_one_line_error(result, "picasso: no such built-in style", *SHIPPED)


def test_styles_command_lists_them():
    result = run_cli("styles")
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in SHIPPED)


def test_main_command_stylizes_with_a_builtin_style(photo, tmp_path):
    result = run_cli("stylize", str(photo), "--style", SHIPPED[0], "-o", str(tmp_path / "out.jpg"))
    assert result.returncode == 0, result.stderr
    out = Image.open(tmp_path / "out.jpg")
    assert out.size == Image.open(photo).size
    assert np.abs(np.asarray(out, float) - np.asarray(Image.open(photo), float)).mean() > 20  # restyled
    assert_one_line_error(run_cli("stylize", str(photo)), "expected a model and a source")


def test_style_option_takes_a_model_file_too(photo, tmp_path):
    """`train --out runs/x.pt` then `stylize photo --style runs/x.pt`: what a user tries first."""
    model = tmp_path / "my_style.pt"
    model.write_bytes(builtin_style(SHIPPED[0]).pt.read_bytes())
    copy = tmp_path / photo.name
    copy.write_bytes(photo.read_bytes())
    result = run_cli("stylize", str(copy), "--style", str(model))
    assert result.returncode == 0, result.stderr
    by_name = run_cli("stylize", str(copy), "--style", SHIPPED[0], "-o", str(tmp_path / "by_name.jpg"))
    assert by_name.returncode == 0, by_name.stderr
    # Named after the style the model file records, not the file.
    out = np.asarray(Image.open(tmp_path / f"{copy.stem}_{SHIPPED[0]}{copy.suffix}"), float)
    assert np.abs(out - np.asarray(Image.open(tmp_path / "by_name.jpg"), float)).mean() < 1
    gone = run_cli("stylize", str(copy), "--style", str(tmp_path / "gone.pt"))
    assert_one_line_error(gone, "no such model file")


def test_sheet_shows_the_photo_in_every_style(photo, tmp_path):
    result = run_cli("sheet", str(photo), "-o", str(tmp_path / "sheet.jpg"), "--size", "96", "--columns", "8")
    assert result.returncode == 0, result.stderr
    sheet = Image.open(tmp_path / "sheet.jpg")
    tiles = 1 + len(builtin_styles())
    assert sheet.width == 96 * min(8, tiles)
    assert_one_line_error(run_cli("sheet", str(photo), "-o", str(tmp_path / "sheet.jpg")), "already exists")


@pytest.mark.slow
def test_a_regular_install_carries_the_models(tmp_path):
    """Build the wheel, check the models are inside, install it into a fresh venv, load by name."""
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    subprocess.run([*build, str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("fast_nst-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"fast_nst/models/{name}.pt" for name in SHIPPED} <= names
    assert not [n for n in names if n.endswith(".onnx")]
    assert "fast_nst/models/styles.json" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Our dependencies (torch, onnxruntime...) from the environment running the tests, a venv or
    # not (--system-site-packages would reach past a venv to the base interpreter's packages).
    # Folders listed in a .pth come after the venv's own site-packages, and their own .pth files
    # (our editable install) are not read, so the wheel's fast_nst is the one imported.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (Path(purelib) / "test_parent_env.pth").write_text("\n".join(ours) + "\n")
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    code = (
        "import fast_nst.styles as s, fast_nst.runtime as r; "
        "print(s.models_folder()); print(r.Stylizer.load('mosaic').style)"
    )
    result = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    folder, style = result.stdout.split()
    assert Path(folder).is_relative_to(venv) and style == "mosaic"
