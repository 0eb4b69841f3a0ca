"""Gatys optimisation on a real photo and painting with the real VGG19: it converges, honours its
scales, blends and colour option, and fails with one clear line."""

import io
import itertools

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, run_cli
from PIL import Image
from rich.console import Console

from fast_nst.color import preserve_color
from fast_nst.config import STYLE_LAYERS, OptimizeConfig, parse_blend, parse_scales
from fast_nst.errors import UserError
from fast_nst.files import load_image_tensor, open_image, pil_to_tensor, resize_long_side
from fast_nst.losses import PerceptualLoss
from fast_nst.optimize import initial_image, iterate, optimize


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def test_twenty_lbfgs_iterations_converge(vgg, photo, painting):
    content = load_image_tensor(photo, 128)
    loss_fn = PerceptualLoss(
        vgg, [load_image_tensor(painting, 128)], dict.fromkeys(STYLE_LAYERS, 1.0), ["relu4_2"], 10.0, 1.0, 1.0
    )
    steps = iterate(loss_fn, loss_fn.content_targets(content), content, "lbfgs", 1.0, None)
    # The 21st step measures the image that 20 iterations made.
    terms = [t for _, t in itertools.islice(steps, 21)]
    first, last = terms[0], terms[-1]
    assert last.total.item() < 0.3 * first.total.item(), (first.total, last.total)
    assert last.style.item() < 0.2 * first.style.item(), (first.style, last.style)


def test_multiscale_writes_the_final_size_and_intermediates(tmp_path, photo, painting):
    out = tmp_path / "out.png"
    cfg = OptimizeConfig(str(photo), [str(painting)], str(out), scales=[48, 96], iters=2, save_every=2)
    image = optimize(cfg, quiet())
    assert image.shape == (1, 3, 64, 96)  # the photo is 384x256
    assert Image.open(out).size == (96, 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out.png",
        "out_48px_00002.png",
        "out_96px_00002.png",
    ]


def test_blend_weights_one_zero_equal_the_one_style(tmp_path, photo, painting):
    common = dict(content=str(photo), scales=[64], iters=3)
    one = optimize(OptimizeConfig(styles=[str(painting)], out=str(tmp_path / "a.png"), **common), quiet())
    blend = OptimizeConfig(
        styles=[str(painting), str(photo)], blend=[1.0, 0.0], out=str(tmp_path / "b.png"), **common
    )
    assert torch.equal(optimize(blend, quiet()), one)
    with pytest.raises(UserError, match=r"b\.png: already exists"):  # from Python as from the CLI
        optimize(blend, quiet())
    assert torch.equal(optimize(blend, quiet(), overwrite=True), one)


def ycbcr(img: Image.Image) -> torch.Tensor:
    """(H, W, 3) Y, Cb, Cr in [0, 1], as PIL computes them."""
    return torch.from_numpy(np.array(img.convert("YCbCr"))).float() / 255


def test_preserve_color_keeps_the_photo_chroma(tmp_path, photo, painting):
    out = tmp_path / "out.png"
    cfg = OptimizeConfig(str(photo), [str(painting)], str(out), scales=[64], iters=2, preserve_color=True)
    optimize(cfg, quiet())
    original = resize_long_side(open_image(photo), 64)  # what the optimiser saw
    chroma_error = ycbcr(open_image(out))[..., 1:] - ycbcr(original)[..., 1:]
    assert chroma_error.abs().mean() < 0.01


def test_preserve_color_pil_and_tensor_agree(photo, painting):
    stylized, original = open_image(painting).convert("RGB"), open_image(photo).convert("RGB")
    via_pil = preserve_color(stylized, original)
    via_tensor = preserve_color(pil_to_tensor(stylized), pil_to_tensor(original))
    assert (pil_to_tensor(via_pil) - via_tensor).abs().max() <= 1 / 255 + 1e-6
    assert (ycbcr(via_pil)[..., 0] - ycbcr(stylized)[..., 0]).abs().mean() < 0.01


@pytest.mark.parametrize("init", ["noise", "style"])
def test_other_inits_and_adam_lower_the_loss(vgg, photo, painting, init):
    content = load_image_tensor(photo, 64)
    style = load_image_tensor(painting, 64)
    loss_fn = PerceptualLoss(vgg, [style], dict.fromkeys(STYLE_LAYERS, 1.0), ["relu4_2"], 10.0, 1.0, 1.0)
    start = initial_image(
        init, content, open_image(painting).convert("RGB"), torch.Generator().manual_seed(0)
    )
    assert start.shape == content.shape
    steps = iterate(loss_fn, loss_fn.content_targets(content), start, "adam", 0.02, None)
    terms = [t.total.item() for _, t in itertools.islice(steps, 8)]
    assert terms[-1] < terms[0]


def test_option_parsing():
    assert parse_scales(None, None) == [512]
    assert parse_scales(None, 300) == [300]
    assert parse_scales("256, 512,1024", 1024) == [256, 512, 1024]
    assert parse_blend("0.7,0.3") == [0.7, 0.3]
    for spec, size in (("512,256", None), ("256,512", 1024), ("a,b", None), ("16", None)):
        with pytest.raises(UserError, match=r"scales|at least"):
            parse_scales(spec, size)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["missing.jpg", "{painting}"], ["missing.jpg", "no such file"]),
        (["{photo}", "{painting}", "--iters", "0"], ["--iters", "at least 1"]),
        (["{photo}", "{painting}", "--style-weight", "-1"], ["--style-weight", "negative"]),
        (["{photo}", "{painting}", "--scales", "512,256"], ["--scales", "coarse to fine"]),
        (["{photo}", "{painting}", "{painting}", "--style-blend", "1"], ["--style-blend", "2 style images"]),
        (["{photo}", "{painting}", "-o", "{tmp}/out.xyz"], ["out.xyz", "extension"]),
    ],
)
def test_cli_bad_inputs_are_one_line(tmp_path, photo, painting, args, needles):
    paths = {"photo": photo, "painting": painting, "tmp": tmp_path}
    args = [a.format(**paths) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.png")]
    if "--scales" not in args:
        args += ["--size", "64"]
    assert_one_line_error(run_cli("optimize", *args, "--device", "cpu"), *needles)
    assert not (tmp_path / "out.png").exists()
