"""Every fast path computes the same function as the plain one, on a real photo.

Speed is measured in benchmarks/, never here; these tests only make sure that switching a fast
path on (ONNX Runtime, compile, half precision, channels-last, batching, autocast in training)
cannot change what the user gets beyond a stated bound.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from helpers_runtime import make_clip, make_model

from fast_nst.config import CONTENT_LAYERS, STYLE_LAYERS
from fast_nst.export import cached_onnx
from fast_nst.files import load_image_tensor
from fast_nst.losses import PerceptualLoss
from fast_nst.runtime import Stylizer
from fast_nst.styles import builtin_style
from fast_nst.transformer import TransformerNet, load_model
from fast_nst.video import stylize_video


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model") / "seeded.pt")


@pytest.fixture(scope="module")
def image(photo):
    return load_image_tensor(photo)  # 384 x 256, odd multiples of nothing in particular


@pytest.fixture(scope="module")
def eager(model_file, image):
    return Stylizer.load(model_file, device="cpu", backend="torch")(image)


def test_default_cpu_path_is_onnxruntime_and_agrees_with_eager(model_file, image, eager):
    fast = Stylizer.load(model_file, device="cpu")
    assert fast.backend.name == "onnxruntime"
    assert (fast(image) - eager).abs().max() < 1e-3


def test_onnx_export_is_made_once_per_model(model_file, tmp_path):
    first = cached_onnx(model_file)
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(model_file) == first and first.stat().st_mtime_ns == stamp
    other = make_model(tmp_path / "other.pt", width=8)
    assert cached_onnx(other) != first


def test_phase_decomposed_layers_are_the_plain_layers(image):
    """The shipped mosaic, on a real photo of an odd size: the fast layers (UpsampleConv2d and
    PhaseConv2d's forward) give the same image as the paper's plain ones (their `plain` branch)."""
    net, _ = load_model(builtin_style("mosaic").pt)
    x = image[..., :251, :377]
    with torch.inference_mode():
        fast, plain = net(x), net(x, plain=True)
    assert fast.shape == plain.shape == x.shape
    assert (fast - plain).abs().max() < 1e-5


def test_channels_last_is_the_same_function(model_file, image, eager):
    y = Stylizer.load(model_file, device="cpu", backend="torch", channels_last=True)(image)
    assert (y - eager).abs().max() < 1e-4


@pytest.mark.parametrize(
    ("precision", "mean_bound", "max_bound"), [("bf16", 0.01, 0.06), ("fp16", 0.002, 0.02)]
)
def test_half_precision_stays_close(model_file, image, precision, mean_bound, max_bound):
    """bf16 keeps 8 mantissa bits, fp16 11: mean errors of ~1 and ~0.3 of an 8-bit level."""
    crop = image[..., :128, :192]  # half precision convolutions are slow on a CPU
    reference = Stylizer.load(model_file, device="cpu", backend="torch")(crop)
    y = Stylizer.load(model_file, device="cpu", precision=precision)(crop)
    assert y.dtype == torch.float32
    assert (y - reference).abs().mean() < mean_bound and (y - reference).abs().max() < max_bound


@pytest.mark.slow
def test_compiled_is_the_same_function(model_file, image, eager):
    compiled = Stylizer.load(model_file, device="cpu", compile=True)
    assert (compiled(image) - eager).abs().max() < 1e-4
    odd = image[..., :199, :257]  # a second size: a second graph, same function
    reference = Stylizer.load(model_file, device="cpu", backend="torch")(odd)
    assert (compiled(odd) - reference).abs().max() < 1e-4


def test_video_batches_do_not_change_frames(model_file, tmp_path):
    src = make_clip(tmp_path / "clip.mp4", "mp4", "aac", frames=7)  # 7: a ragged last batch

    def frames(batch_size: int) -> np.ndarray:
        out = tmp_path / f"b{batch_size}.mp4"
        stylize_video(Stylizer.load(model_file, device="cpu", batch_size=batch_size), src, out)
        with av.open(str(out)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])

    single, batched = frames(1), frames(4)
    assert single.shape[0] == 7 and np.array_equal(single, batched)


def test_training_autocast_and_channels_last_keep_the_loss(vgg, photo, painting):
    """The trainer's fast paths (bf16 autocast, channels-last) give the fp32 loss within 2%."""
    torch.manual_seed(0)
    net = TransformerNet(width=16)
    style = [load_image_tensor(painting, 128)]
    loss = PerceptualLoss(vgg, style, dict.fromkeys(STYLE_LAYERS, 1.0), CONTENT_LAYERS, 10.0, 1.0, 10.0)
    x = load_image_tensor(photo, 128)

    def total(channels_last: bool, dtype: torch.dtype | None) -> torch.Tensor:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        n, xi = net.to(memory_format=fmt), x.contiguous(memory_format=fmt)
        with torch.no_grad(), torch.autocast("cpu", dtype or torch.float32, enabled=dtype is not None):
            return loss(n(xi), loss.content_targets(xi)).total.float()

    reference = total(False, None)
    assert torch.isclose(total(True, None), reference, rtol=1e-4)
    assert torch.isclose(total(False, torch.bfloat16), reference, rtol=0.02)
