"""An exported model in other runtimes, each within 2/255 of Python's ONNX Runtime on a real photo,
through the scripts in examples/ that users copy. Each skips, saying how to get its runtime."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from PIL import Image

from fast_nst.export import export_onnx
from fast_nst.styles import builtin_style

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOLERANCE = 2  # 8-bit levels


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The built-in mosaic style exported as a user would (fp32, any size)."""
    return export_onnx(builtin_style("mosaic").pt, tmp_path_factory.mktemp("deploy") / "mosaic.onnx").path


@pytest.fixture(scope="module")
def photo_png(photo, tmp_path_factory) -> Path:
    """The photo as a PNG, so every runtime starts from the same pixels (no JPEG decoder differences)."""
    path = tmp_path_factory.mktemp("deploy") / "chicago.png"
    Image.open(photo).convert("RGB").save(path)
    return path


@pytest.fixture(scope="module")
def expected(model, photo_png) -> np.ndarray:
    """Python ONNX Runtime's result, (H, W, 3) uint8 RGB."""
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = np.asarray(Image.open(photo_png), np.float32).transpose(2, 0, 1)[None] / 255
    y = session.run(None, {"image": x})[0][0].transpose(1, 2, 0)
    return np.clip(y * 255 + 0.5, 0, 255).astype(np.uint8)


def _levels_apart(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def test_opencv_dnn_runs_the_export(model, photo_png, expected):
    cv2 = pytest.importorskip("cv2", reason="OpenCV DNN needs `pip install opencv-python-headless`")
    spec = importlib.util.spec_from_file_location("opencv_stylize", EXAMPLES / "opencv_stylize.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    bgr = example.stylize(str(model), cv2.imread(str(photo_png), cv2.IMREAD_COLOR))
    assert _levels_apart(bgr[..., ::-1], expected) <= TOLERANCE


def test_onnxruntime_node_runs_the_export(model, photo_png, expected, tmp_path):
    node = shutil.which("node")
    if node is None or not (EXAMPLES / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip("needs Node.js and `npm install --ignore-scripts --prefix examples` (onnxruntime-node)")
    out = tmp_path / "out.png"
    script = EXAMPLES / "node_stylize.mjs"
    result = subprocess.run(
        [node, script, model, photo_png, out], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert _levels_apart(np.asarray(Image.open(out).convert("RGB")), expected) <= TOLERANCE


class _Files(http.server.SimpleHTTPRequestHandler):
    """examples/ as a static site, plus the model under test at /model.onnx."""

    def __init__(self, *args, model: Path, **kwargs) -> None:
        self.model = model
        super().__init__(*args, directory=str(EXAMPLES), **kwargs)

    def translate_path(self, path: str) -> str:
        return str(self.model) if path == "/model.onnx" else super().translate_path(path)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(model) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Files, model=model))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_onnxruntime_web_runs_the_export_in_chromium(site, photo_png, expected):
    """ONNX Runtime Web (WebAssembly) in a real headless Chromium, through examples/web's module."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs `pip install playwright`")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None or not (EXAMPLES / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip("needs Chromium (Debian: apt install chromium) and `npm install --prefix examples`")
    rgba = np.asarray(Image.open(photo_png).convert("RGBA"))
    h, w = rgba.shape[:2]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page()
        page.goto(f"{site}/web/index.html")
        pixels = page.evaluate(
            """async ([rgba, w, h]) => {
                const { stylize } = await import("./stylize.mjs");
                const image = new ImageData(new Uint8ClampedArray(rgba), w, h);
                return Array.from((await stylize("/model.onnx", image)).data);
            }""",
            [rgba.reshape(-1).tolist(), w, h],
        )
        browser.close()
    got = np.array(pixels, np.uint8).reshape(h, w, 4)[..., :3]
    assert _levels_apart(got, expected) <= TOLERANCE
