"""What only a GPU can show: mixed-precision training, the fast layouts, half-precision inference.

Run by tools/gpu/run.sh on the GPU machine (`pytest -m cuda`); skipped on a machine without CUDA.
Real photos, the real painting and the real VGG19 throughout.
"""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from conftest import ASSETS
from rich.console import Console

from fast_nst.config import CONTENT_LAYERS, STYLE_LAYERS
from fast_nst.data import DeviceCrops, find_images
from fast_nst.files import load_image_tensor
from fast_nst.losses import PerceptualLoss
from fast_nst.runtime import Stylizer
from fast_nst.train import TrainConfig, load_checkpoint, train
from fast_nst.transformer import TransformerNet, load_model

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (tools/gpu/run.sh)"),
]
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def loss_fn(vgg):
    style = load_image_tensor(ASSETS / "mosaic.jpg").to(CUDA)
    return PerceptualLoss(vgg.to(CUDA), [style], dict.fromkeys(STYLE_LAYERS, 1.0), CONTENT_LAYERS, 10, 1, 10)


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    crops = [load_image_tensor(ASSETS / name, 128)[..., :80, :80] for name in ("chicago.jpg", "dog.jpg")]
    return torch.cat(crops).to(CUDA)


def _losses(loss_fn, x, dtype, steps=8, memory_format=torch.contiguous_format, compile=False):
    """Loss before each of `steps` Adam steps on one batch, as the trainer takes them."""
    torch.manual_seed(0)
    net = TransformerNet().to(CUDA, memory_format=memory_format)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    forward = torch.compile(net) if compile else net
    x = x.contiguous(memory_format=memory_format)
    out = []
    for _ in range(steps):
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            terms = loss_fn(forward(x), loss_fn.content_targets(x))
        opt.zero_grad()
        scaler.scale(terms.total).backward()
        scaler.step(opt)
        scaler.update()
        out.append(terms.total.item())
    return out


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16+scaler"])
def test_mixed_precision_steps_are_finite_and_learn(loss_fn, batch, dtype):
    losses = _losses(loss_fn, batch, dtype)
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert losses[-1] < 0.8 * losses[0], losses


def test_channels_last_and_compiled_steps_match_eager(loss_fn, batch):
    eager = _losses(loss_fn, batch, None, steps=3)
    channels_last = _losses(loss_fn, batch, None, steps=3, memory_format=torch.channels_last)
    compiled = _losses(loss_fn, batch, None, steps=3, compile=True)
    for other in (channels_last, compiled):
        assert torch.allclose(torch.tensor(other), torch.tensor(eager), rtol=2e-3), (eager, other)


@pytest.mark.parametrize(("precision", "bound"), [("fp16", 0.01), ("bf16", 0.05)])
def test_half_precision_inference_matches_fp32(precision, bound):
    x = load_image_tensor(ASSETS / "chicago.jpg")
    full = Stylizer.load("mosaic", device="cuda", backend="torch")(x)
    half = Stylizer.load("mosaic", device="cuda", backend="torch", precision=precision)(x)
    assert (half - full).abs().mean() < bound / 5 and (half - full).abs().max() < 4 * bound


def test_device_crops_match_the_cpu_ones():
    """Photos decoded into GPU memory give the crops the same store gives on the CPU."""
    files = find_images(ASSETS)
    quiet = Console(file=io.StringIO())
    gpu = DeviceCrops(files, 64, CUDA, quiet).crops([(0, 11), (1, 12), (2, 13)])
    cpu = DeviceCrops(files, 64, torch.device("cpu"), quiet).crops([(0, 11), (1, 12), (2, 13)])
    assert gpu.is_cuda and (gpu.cpu().float() - cpu.float()).abs().max() <= 1


def test_a_cuda_checkpoint_resumes_on_the_cpu(tmp_path, photos):
    cfg = TrainConfig(
        style=str(ASSETS / "mosaic.jpg"), data=str(photos), out=str(tmp_path / "m.pt"),
        run_dir=str(tmp_path / "run"), steps=3, batch_size=2, image_size=64, width=8, style_size=128,
        preview_count=2, device="cuda", workers=0,
    )  # fmt: skip
    quiet = Console(file=io.StringIO())
    train(cfg, console=quiet)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["config"]["device"] == "cuda"
    train(dataclasses.replace(cfg, steps=5, device="cpu"), resume=ckpt, console=quiet)
    net, record = load_model(tmp_path / "m.pt")
    assert record["meta"]["steps"] == 5 and next(net.parameters()).device.type == "cpu"
