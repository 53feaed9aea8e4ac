"""Models shaped like the ones researchers open, for tests (torchvision cannot be installed here).

Names, nesting and initialisation follow torchvision's ``resnet18``/``resnet34``,
``mobilenet_v3_small`` and ``vit_b_16`` (at small widths, so tests stay fast), plus the habits
of real packages: a constructor that prints (LPIPS), one that loads its own weights into its
parameters (facenet-pytorch), one that counts how often it runs. Used as model specs
(``tests/zoo_models.py:resnet18``), so this file is imported the way users' model files are.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

WIDTH = 8


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        if self.downsample is not None:
            identity = self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet(nn.Module):
    """torchvision's ResNet with BasicBlocks: the same tensor names, smaller widths."""

    def __init__(self, layers=(2, 2, 2, 2), num_classes: int = 10, width: int = WIDTH) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        planes, inplanes = width, width
        for i, blocks in enumerate(layers, 1):
            stride = 1 if i == 1 else 2
            planes = width * 2 ** (i - 1)
            mods = [BasicBlock(inplanes, planes, stride)] + [BasicBlock(planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*mods))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # scriptable (no getattr)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 10) -> ResNet:
    return ResNet((2, 2, 2, 2), num_classes)


def resnet34(num_classes: int = 10) -> ResNet:
    return ResNet((3, 4, 6, 3), num_classes)


def example_inputs():
    return (torch.randn(2, 3, 32, 32),)


class MobileNetSmall(nn.Module):
    """mobilenet_v3_small's naming (``features.N.block...``, ``classifier.N``), tiny."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish()),
            nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU()),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(8, 16), nn.Hardswish(), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def mobilenet_v3_small(num_classes: int = 10) -> MobileNetSmall:
    return MobileNetSmall(num_classes)


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.self_attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class VisionTransformer(nn.Module):
    """vit_b_16's naming and its zero-initialised head, tiny (16x16 images, 4x4 patches)."""

    def __init__(self, num_classes: int = 10, dim: int = 16, layers: int = 2, image_size: int = 16) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, 4, 4)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        n = (image_size // 4) ** 2 + 1
        self.encoder = nn.Module()
        self.encoder.pos_embedding = nn.Parameter(torch.empty(1, n, dim).normal_(std=0.02))
        self.encoder.layers = nn.Sequential(OrderedDict((f"encoder_layer_{i}", EncoderBlock(dim, 2))
                                                        for i in range(layers)))
        self.encoder.ln = nn.LayerNorm(dim)
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(dim, num_classes))
        nn.init.zeros_(self.heads.head.weight)
        nn.init.zeros_(self.heads.head.bias)

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1) + self.encoder.pos_embedding
        x = self.encoder.ln(self.encoder.layers(x))
        return self.heads(x[:, 0])


def vit_b_16(num_classes: int = 10) -> VisionTransformer:
    return VisionTransformer(num_classes)


def vit_example_inputs():
    return (torch.randn(2, 3, 16, 16),)


class Chatty(nn.Module):
    """Prints while it is imported, built and run, as LPIPS does ("Setting up [LPIPS]...")."""

    def __init__(self) -> None:
        super().__init__()
        print("Setting up [chatty] perceptual loss")
        self.lin = nn.Conv2d(4, 1, 1, bias=False)

    def forward(self, x):
        print("chatty forward")
        return self.lin(x)


def chatty_inputs():
    return (torch.randn(1, 4, 3, 3),)


class CountsItself(nn.Module):
    """Appends a line to $PARAMEDIT_TEST_COUNT_FILE each time it is constructed."""

    def __init__(self, extra: bool = False) -> None:
        super().__init__()
        print("constructing CountsItself", flush=True)
        count_file = os.environ.get("PARAMEDIT_TEST_COUNT_FILE")
        if count_file:
            with open(count_file, "a") as stream:
                stream.write("built\n")
        self.fc = nn.Linear(3, 2)
        if extra:
            self.extra = nn.Linear(2, 2)

    def forward(self, x):
        out = self.fc(x)
        return self.extra(out) if hasattr(self, "extra") else out


class LoadsItsOwnWeights(nn.Module):
    """Like facenet-pytorch's InceptionResnetV1(pretrained=...): the constructor loads a file."""

    def __init__(self, weights: str = "") -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2)
        if weights:
            self.load_state_dict(torch.load(Path(weights), weights_only=True))

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))
