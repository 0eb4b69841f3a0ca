"""TransformerNet keeps any input size and the [0, 1] range; model files round-trip safely."""

import pickle

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

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


def _flops(width: int, plain: bool = False) -> int:
    """Floating-point operations of one 256x256 forward pass, counted by PyTorch as it runs."""
    net = TransformerNet(width).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.rand(1, 3, 256, 256), plain=plain)
    return counter.get_total_flops()


def test_the_light_network_needs_3_5x_less_work():
    """--width 16 (the README's 3.5x fewer multiply-adds), and the fast layers' saving (12%)."""
    assert 3.4 < _flops(32) / _flops(16) < 3.7
    assert 1.1 < _flops(32, plain=True) / _flops(32) < 1.2


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
