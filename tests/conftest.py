"""Shared test fixtures: real photos and paintings, and the real VGG19 (loaded once per session)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ASSETS = Path(__file__).parent / "assets"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_path(relative: str) -> Path:
    """A file or folder of ../shared/data, or a skip saying why it is not there."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs the shared development data ({path} is absent; see data/README.md)")
    return path


def pytest_runtest_setup(item: pytest.Item) -> None:
    """CI runs the slow tests last and only while its 15 minutes allow (.ci/run sets the deadline,
    in seconds since the epoch): on a slow host the rest of the suite still fits."""
    deadline = os.environ.get("FAST_NST_SLOW_DEADLINE")
    if deadline and item.get_closest_marker("slow") and time.time() > float(deadline):
        pytest.skip("slow, and CI's time was spent (run it with: pytest -m slow)")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """ONNX exports cached by the runtime go to a per-session folder, never the user's cache."""
    os.environ["FAST_NST_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real photo (Chicago skyline, 384x256), always present."""
    return ASSETS / "chicago.jpg"


@pytest.fixture(scope="session")
def painting() -> Path:
    """A real painting (the mosaic style image, 256x213), always present."""
    return ASSETS / "mosaic.jpg"


@pytest.fixture
def photos(tmp_path) -> Path:
    """A small folder of real photos to train on (the test assets, repeated under other names)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        for src in ("chicago.jpg", "dog.jpg"):
            shutil.copy(ASSETS / src, folder / f"{i}_{src}")
    return folder


@pytest.fixture(scope="session")
def vgg():
    """The default (caffe) VGG19 encoder with every standard layer; built once, it is frozen."""
    from fast_nst.config import CONTENT_LAYERS, STYLE_LAYERS
    from fast_nst.vgg import VGG19Encoder

    return VGG19Encoder([*STYLE_LAYERS, *CONTENT_LAYERS, "relu2_2"])


def run_cli(*args, cwd=None, preexec_fn=None, timeout=300):
    """`fast-nst ARGS...` in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "fast_nst", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        preexec_fn=preexec_fn,
        timeout=timeout,
    )


def assert_one_line_error(result, *needles):
    """Exit code 1, no traceback, and a last line `error: ...` naming each of `needles`."""
    assert result.returncode == 1, result.stderr
    # The progress bar may have drawn above; the error itself is the one last line.
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:"), result.stderr
    for needle in needles:
        assert needle in last, last
