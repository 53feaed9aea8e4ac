"""Shared fixtures: tiny real models written as model files, the way users write them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

MODELS_PY = '''
import torch
from torch import nn


class Net(nn.Module):
    """The classic example: one Linear(5, 3)."""

    def __init__(self, n_in=5, n_out=3):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.fc(x)


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        return self.fc(x)


class Pretrained(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 5)

    def forward(self, x):
        return self.fc(x)


class WithUnused(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(4, 2)
        self.unused = nn.Linear(4, 2)

    def forward(self, x):
        return self.used(x)


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return self.head(self.backbone(x))


class Tied(nn.Module):
    def __init__(self, vocab=11, width=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.out = nn.Linear(width, vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, tokens):
        return self.out(self.embed(tokens))


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


class HalfNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3).to(torch.float16)

    def forward(self, x):
        return self.fc(x.to(torch.float16))


def make_net(width=3):
    return Net(5, width)


def not_a_module():
    return 42


def raises():
    raise RuntimeError("constructor exploded")


def example_inputs():
    return (torch.randn(2, 5),)
'''


@pytest.fixture
def models_py(tmp_path: Path) -> Path:
    """A model file with the tiny models the tests use; specs are ``f"{models_py}:Net"``."""
    path = tmp_path / "models.py"
    path.write_text(textwrap.dedent(MODELS_PY))
    return path


@pytest.fixture
def linear_ckpt(tmp_path: Path) -> Path:
    """A ``torch.save`` state dict of ``Net`` (fc: Linear(5, 3)) with known values."""
    torch.manual_seed(0)
    fc = torch.nn.Linear(5, 3)
    path = tmp_path / "net.pt"
    torch.save({"fc.weight": fc.weight.detach().clone(), "fc.bias": fc.bias.detach().clone()}, path)
    return path


def file_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip cleanly on machines without a CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
