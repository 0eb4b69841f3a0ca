"""Loss maths on tensors whose answers are known by hand, and on a real photo and painting."""

import pytest
import torch
from conftest import shared_path

from fast_nst.config import STYLE_LAYERS
from fast_nst.data import find_images, spaced_photos
from fast_nst.errors import UserError
from fast_nst.files import load_image_tensor
from fast_nst.losses import (
    PerceptualLoss,
    gram_matrix,
    parse_layer_weights,
    relative_sq_error,
    tv_loss,
)


def test_gram_matrix_by_hand():
    # Two channels over 2x2 positions: f0 = [1,2,3,4], f1 = [0,1,0,1].
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    expected = torch.tensor([[[30.0, 6.0], [6.0, 2.0]]]) / (2 * 2 * 2)
    assert torch.allclose(gram_matrix(f), expected)


def test_gram_is_float32_under_autocast():
    f = torch.randn(1, 8, 4, 4, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gram_matrix(f).dtype == torch.float32


def test_relative_error_and_tv_by_hand():
    x, t = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 4.0]])
    assert relative_sq_error(x, t).item() == pytest.approx(9 / 16)
    assert relative_sq_error(t, t).item() == 0
    # A vertical edge from 0 to 1 in a 2x2 image: one horizontal step of 1 in each row.
    img = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    assert tv_loss(img).item() == pytest.approx(0 + 1.0)
    assert tv_loss(torch.ones(1, 3, 5, 5)).item() == 0


def test_layer_weight_parsing():
    assert parse_layer_weights("relu1_1, relu2_1:0.5") == {"relu1_1": 1.0, "relu2_1": 0.5}
    with pytest.raises(UserError):
        parse_layer_weights("relu1_1:x")
    with pytest.raises(UserError):
        parse_layer_weights("relu1_1:-1")


def _loss(vgg, style_image, **weights):
    layers = dict.fromkeys(STYLE_LAYERS, 1.0)
    w = {"style_weight": 1.0, "content_weight": 1.0, "tv_weight": 0.0} | weights
    return PerceptualLoss(vgg, [style_image], layers, ["relu4_2"], **w)


def test_style_loss_of_image_against_itself_is_zero(vgg, painting, photo):
    style = load_image_tensor(painting)
    loss = _loss(vgg, style)
    with torch.no_grad():
        terms = loss(style, loss.content_targets(style))
        x = load_image_tensor(photo)
        other = loss(x, loss.content_targets(x))
    assert terms.style.item() == pytest.approx(0, abs=1e-6)
    assert terms.content.item() == pytest.approx(0, abs=1e-6)
    assert other.style.item() > 0.1  # a photo is far from a mosaic's statistics
    assert other.content.item() == pytest.approx(0, abs=1e-6)


def test_style_loss_gradient_moves_a_photo_towards_the_painting(vgg, painting, photo):
    loss = _loss(vgg, load_image_tensor(painting, 128), content_weight=0.0)
    x = load_image_tensor(photo, 128).requires_grad_(True)
    targets = loss.content_targets(x)
    before = loss(x, targets).style
    before.backward()
    with torch.no_grad():
        after = loss((x - 0.05 * x.grad / x.grad.abs().max()).clamp(0, 1), targets).style
    assert after < before


def test_negative_weight_is_a_user_error(vgg, painting):
    with pytest.raises(UserError, match="style-weight"):
        _loss(vgg, load_image_tensor(painting, 64), style_weight=-1.0)


def test_balanced_style_layers_are_in_units_of_a_photo(vgg):
    """udnie's Gram norms weigh relu1_1 several times above relu2_1..relu4_1 for any photo;
    balanced on 8 training photos, the layers of the 8 unseen test photos all read near 1."""
    painting = load_image_tensor(shared_path("styles/udnie.jpg"), 512)
    _, calibration = spaced_photos(find_images(shared_path("photos/train")), 8, 256)
    _, tests = spaced_photos(find_images(shared_path("photos/test")), 8, 256)
    loss = _loss(vgg, painting)
    before = {n: v.item() for n, v in loss.style.per_layer(vgg(tests, STYLE_LAYERS)).items()}
    loss.balance_style_layers(calibration)
    after = {n: v.item() for n, v in loss.style.per_layer(vgg(tests, STYLE_LAYERS)).items()}
    assert max(before.values()) > 4 * min(before.values()), before
    assert all(0.5 < v < 2 for v in after.values()), after


def test_the_gap_style_loss_is_the_squared_style_gap(vgg, painting, photo):
    """In a photo's units, the geometric style loss of an output is exactly `evaluate`'s style_gap
    squared for that photo (the figure it is meant to track); the arithmetic sum is not."""
    from fast_nst.evaluate import gap_metrics
    from fast_nst.runtime import Stylizer

    size = 256
    content = load_image_tensor(photo, size)
    output = Stylizer.load("mosaic")(content)
    gap = gap_metrics(output, content, painting, vgg, size=size)["style_gap"]
    losses = {}
    for kind in ("gap", "balanced"):
        loss = _loss(vgg, load_image_tensor(painting, size), style_loss=kind)
        loss.balance_style_layers(content)
        losses[kind] = loss.style(vgg(output, STYLE_LAYERS)).item()
    assert 0.1 < gap < 0.8
    assert losses["gap"] == pytest.approx(gap**2, rel=1e-3)
    assert losses["balanced"] != pytest.approx(gap**2, rel=0.05)
