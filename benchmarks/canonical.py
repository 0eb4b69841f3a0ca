"""A faithful re-creation of the canonical PyTorch example (pytorch/examples, fast_neural_style),
written from its description, as the baseline our figures are compared with in the same run.

What it does, as the example does: TransformerNet with ReflectionPad2d + Conv2d layers, affine
InstanceNorm, nearest-upsample + conv decoder and an unbounded output in 0-255; a VGG16 loss
network cut into four slices (relu1_2, relu2_2, relu3_3, relu4_3); content MSE at relu2_2 x 1e5,
style MSE of Grams (normalised by C*H*W) x 1e10; fp32 eager; Adam 1e-3; photos loaded in the main
process (Resize(256), CenterCrop(256), x255) with no loader workers; `.item()` on both losses
every step. VGG16 has random weights here: the cost of a step does not depend on their values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn


class ConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.in1 = ConvLayer(channels, channels, 3, 1), nn.InstanceNorm2d(channels, affine=True)
        self.conv2, self.in2 = ConvLayer(channels, channels, 3, 1), nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))


class UpsampleConvLayer(ConvLayer):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.interpolate(x, mode="nearest", scale_factor=2))


class CanonicalTransformerNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.in1 = ConvLayer(3, 32, 9, 1), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = ConvLayer(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = ConvLayer(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        self.res = nn.Sequential(*(ResidualBlock(128) for _ in range(5)))
        self.deconv1, self.in4 = UpsampleConvLayer(128, 64, 3, 1), nn.InstanceNorm2d(64, affine=True)
        self.deconv2, self.in5 = UpsampleConvLayer(64, 32, 3, 1), nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


class Vgg16(nn.Module):
    """torchvision's vgg16().features[:23] in the example's four slices."""

    def __init__(self) -> None:
        super().__init__()
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
        layers: list[nn.Module] = []
        c = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c = int(v)
        self.slices = nn.ModuleList(
            [nn.Sequential(*layers[a:b]) for a, b in ((0, 4), (4, 9), (9, 16), (16, 23))]
        )
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out


def gram_matrix(y: Tensor) -> Tensor:
    b, ch, h, w = y.size()
    features = y.view(b, ch, w * h)
    return features.bmm(features.transpose(1, 2)) / (ch * h * w)


def normalize_batch(batch: Tensor) -> Tensor:
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    return (batch.div(255.0) - mean) / std


def load_batches(files: list[Path], batch_size: int, size: int = 256) -> Iterator[Tensor]:
    """Resize(size) + CenterCrop(size) + ToTensor() * 255, in the main process, forever."""
    while True:
        for i in range(0, len(files) - batch_size + 1, batch_size):
            images = []
            for f in files[i : i + batch_size]:
                img = Image.open(f).convert("RGB")
                scale = size / min(img.size)
                img = img.resize(
                    (round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR
                )
                left, top = (img.width - size) // 2, (img.height - size) // 2
                img = img.crop((left, top, left + size, top + size))
                images.append(torch.from_numpy(np.array(img)).permute(2, 0, 1).float())
            yield torch.stack(images)


class CanonicalTrainer:
    """One optimiser step per call, exactly as the example's training loop body."""

    def __init__(self, style: Tensor, batch_size: int, device: torch.device) -> None:
        self.device = device
        self.transformer = CanonicalTransformerNet().to(device)
        self.optimizer = torch.optim.Adam(self.transformer.parameters(), 1e-3)
        self.vgg = Vgg16().to(device)
        style = normalize_batch(style.repeat(batch_size, 1, 1, 1).to(device) * 255)
        self.gram_style = [gram_matrix(y) for y in self.vgg(style)]

    def step(self, x: Tensor) -> tuple[float, float]:
        n_batch = len(x)
        self.optimizer.zero_grad()
        x = x.to(self.device)
        y = self.transformer(x)
        y, x = normalize_batch(y), normalize_batch(x)
        features_y, features_x = self.vgg(y), self.vgg(x)
        content_loss = 1e5 * F.mse_loss(features_y[1], features_x[1])
        style_loss = 0.0
        for ft_y, gm_s in zip(features_y, self.gram_style, strict=True):
            style_loss += F.mse_loss(gram_matrix(ft_y), gm_s[:n_batch, :, :])
        style_loss *= 1e10
        (content_loss + style_loss).backward()
        self.optimizer.step()
        return content_loss.item(), style_loss.item()
