"""Shared test fixtures: real photos and paintings, and the real VGG19 (loaded once per session)."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real photo (Chicago skyline, 384x256), always present."""
    return ASSETS / "chicago.jpg"


@pytest.fixture(scope="session")
def painting() -> Path:
    """A real painting (the mosaic style image, 256x213), always present."""
    return ASSETS / "mosaic.jpg"


@pytest.fixture(scope="session")
def vgg():
    """The default (caffe) VGG19 encoder with every standard layer; built once, it is frozen."""
    from fast_nst.losses import CONTENT_LAYERS, STYLE_LAYERS
    from fast_nst.vgg import VGG19Encoder

    return VGG19Encoder([*STYLE_LAYERS, *CONTENT_LAYERS, "relu2_2"])
