"""TransformerNet keeps any input size and the [0, 1] range; model files round-trip safely."""

import pickle

import pytest
import torch

from fast_nst.errors import UserError
from fast_nst.files import load_image_tensor
from fast_nst.transformer import TransformerNet, load_model, model_record


@pytest.mark.parametrize(("h", "w"), [(257, 199), (64, 64), (33, 130)])
def test_output_has_the_input_size(h, w):
    net = TransformerNet(width=8).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.min() >= 0 and y.max() <= 1


def test_width_16_is_about_four_times_cheaper():
    def params(width: int) -> int:
        return sum(p.numel() for p in TransformerNet(width).parameters())

    assert 3.3 < params(32) / params(16) < 4.2


def test_model_file_round_trip(tmp_path, photo):
    torch.manual_seed(0)
    net = TransformerNet(width=8).eval()
    path = tmp_path / "m.pt"
    torch.save(model_record(net, {"style": "mosaic"}), path)
    loaded, record = load_model(path)
    x = load_image_tensor(photo, 96)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    assert record["meta"]["style"] == "mosaic"
    assert torch.load(path, weights_only=True)["arch"] == {"width": 8, "n_residual": 5}


class _Evil:
    def __reduce__(self):
        return (print, ("this ran",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        pickle.dump({"format": "fast-nst-model", "x": _Evil()}, f, protocol=2)
    with pytest.raises(UserError, match="refused"):
        load_model(path)


def test_foreign_files_are_user_errors(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(UserError, match="not a fast-nst model"):
        load_model(other)
    with pytest.raises(UserError, match="no such model"):
        load_model(tmp_path / "missing.pt")
