"""An exported model in other runtimes, each within 2/255 of Python's ONNX Runtime on a real photo,
through the scripts in examples/ that users copy. Each skips, saying how to get its runtime."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from conftest import assert_one_line_error, run_cli
from helpers_runtime import make_model
from PIL import Image

from fast_nst.errors import UserError
from fast_nst.export import export_onnx
from fast_nst.styles import builtin_style, builtin_styles
from fast_nst.web import build_site, server

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


ORT_WEB = EXAMPLES / "node_modules" / "onnxruntime-web"


@pytest.fixture(scope="module")
def chromium():
    """Playwright's API driving Debian's Chromium, with a fake camera that needs no permission prompt."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs `pip install playwright`")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None or not ORT_WEB.is_dir():
        pytest.skip("needs Chromium (Debian: apt install chromium) and `npm install --prefix examples`")
    fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=fake_camera)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The app as `fast-nst export --web` writes it, with the mosaic style, served as `fast-nst web`
    serves it: (its URL, its folder). ONNX Runtime Web from npm's copy, as a user offline passes it."""
    if not ORT_WEB.is_dir():
        pytest.skip("needs `npm install --prefix examples` (onnxruntime-web)")
    site = build_site(tmp_path_factory.mktemp("web") / "site", ["mosaic"], ORT_WEB)
    httpd = server(site.path, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", site.path
    httpd.shutdown()
    httpd.server_close()


def test_the_web_app_stylizes_a_photo_in_chromium_like_python(app, chromium, photo_png, expected, tmp_path):
    """ONNX Runtime Web (WebAssembly) in a real headless Chromium, through the app's own controls:
    choose a style and a photo, wait for the result, download it; the PNG matches Python's ONNX
    Runtime on the same export."""
    page = chromium.new_page()
    page.goto(app[0])
    page.wait_for_selector("#status[data-state=ready]")
    page.select_option("#style", label="mosaic")
    page.select_option("#size", "0")  # original size: no browser resampling to account for
    page.set_input_files("#image-file", photo_png)
    page.wait_for_selector("#status[data-state=done]", timeout=120_000)
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "chicago-mosaic.png"
    download.value.save_as(tmp_path / "result.png")
    page.close()
    result = np.asarray(Image.open(tmp_path / "result.png").convert("RGB"))
    assert _levels_apart(result, expected) <= TOLERANCE


def test_the_web_app_stylizes_the_camera_until_stopped(app, chromium):
    page = chromium.new_page()
    page.goto(app[0])
    page.wait_for_selector("#status[data-state=ready]")
    page.select_option("#size", "256")
    page.click("#camera")
    page.wait_for_function("Number(document.getElementById('status').dataset.frames) >= 2", timeout=120_000)
    page.click("#camera")  # the page stays responsive while frames run: inference is in a worker
    page.wait_for_selector("#status[data-state=done]", timeout=60_000)
    size, differs = page.evaluate(
        """() => {
            const [a, b] = ["input", "output"].map((id) => document.getElementById(id));
            const pixels = (c) => c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            const [x, y] = [pixels(a), pixels(b)];
            let d = 0;
            for (let i = 0; i < x.length; i++) d += Math.abs(x[i] - y[i]);
            return [[b.width, b.height], d / x.length];
        }"""
    )
    page.close()
    assert size == [256, 192]  # the fake camera's 640x480, long side 256
    assert differs > 20  # stylised, not the camera's frame passed through


def test_the_web_app_is_refused_over_an_existing_folder_and_without_its_runtime(tmp_path):
    (tmp_path / "site").mkdir()
    with pytest.raises(UserError, match="already exists"):
        build_site(tmp_path / "site", ["mosaic"], ORT_WEB)
    with pytest.raises(UserError, match="no ONNX Runtime Web files here"):
        build_site(tmp_path / "other", ["mosaic"], tmp_path)
    assert not (tmp_path / "other").exists()
    # --overwrite replaced a user's folder whole, the model being exported included.
    (tmp_path / "site" / "precious.txt").write_text("a user's file")
    with pytest.raises(UserError, match="site: not an app this command wrote"):
        build_site(tmp_path / "site", ["mosaic"], ORT_WEB, overwrite=True)
    (tmp_path / "notes.txt").write_text("a user's file")
    with pytest.raises(UserError, match=r"notes\.txt: not an app this command wrote"):
        build_site(tmp_path / "notes.txt", ["mosaic"], ORT_WEB, overwrite=True)
    assert (tmp_path / "site" / "precious.txt").is_file() and (tmp_path / "notes.txt").is_file()


def test_export_web_writes_a_static_folder_with_the_chosen_styles(tmp_path):
    if not ORT_WEB.is_dir():
        pytest.skip("needs `npm install --prefix examples` (onnxruntime-web)")
    own = make_model(tmp_path / "my_style.pt")
    result = run_cli(
        "export", "mosaic_light", str(own), "--web", str(tmp_path / "site"), "--ort-web", str(ORT_WEB)
    )
    assert result.returncode == 0, result.stderr
    assert "styles: mosaic_light, my_style" in result.stdout
    manifest = json.loads((tmp_path / "site" / "styles.json").read_text())
    assert [s["file"] for s in manifest] == ["models/mosaic_light.onnx", "models/my_style.onnx"]
    for entry in manifest:  # each style loads in ONNX Runtime and keeps the image's size
        session = onnxruntime.InferenceSession(str(tmp_path / "site" / entry["file"]))
        assert session.run(None, {"image": np.zeros((1, 3, 37, 50), np.float32)})[0].shape == (1, 3, 37, 50)
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == [
        "app.mjs",
        "index.html",
        "models",
        "ort",
        "styles.json",
    ]
    assert_one_line_error(run_cli("export", "mosaic", str(own)), "one model file")


def test_the_app_offers_every_built_in_style_starting_with_the_fast_one(tmp_path):
    """With no styles named, every built-in one; the page starts on the first, which must be the
    network that keeps up with a camera in a browser."""
    if not ORT_WEB.is_dir():
        pytest.skip("needs `npm install --prefix examples` (onnxruntime-web)")
    build_site(tmp_path / "site", (), ORT_WEB)
    names = [s["name"] for s in json.loads((tmp_path / "site" / "styles.json").read_text())]
    assert names[0] == "mosaic_fast" and sorted(names) == sorted(builtin_styles())
