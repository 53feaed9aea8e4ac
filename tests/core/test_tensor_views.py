"""Issue 9: the slice an N-D tensor opens on, and the first tensor shown when a model opens."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import paramedit
from paramedit.core.analysis.tensor_views import (
    MAX_COLUMN_STEP,
    SAMPLE_BUDGET,
    default_view_dims,
    first_tensor_to_show,
    looks_constant,
    sample_region,
)
from paramedit.core.editing.regions import parse_region
from paramedit.core.session import Session


@pytest.mark.parametrize(("shape", "dims"), [
    ((), (-1, -1)),
    ((7,), (-1, 0)),
    ((3, 4), (0, 1)),
    ((64, 1), (0, 1)),  # 2-D is never rearranged
    ((64, 3, 1, 1), (0, 1)),  # a 1x1 conv (ResNet downsample): out x in, not one number
    ((1, 64, 1, 1), (0, 1)),  # LPIPS's [1, 64, 1, 1]: the 64 values as columns
    ((1024, 1, 512, 1), (0, 2)),  # CREPE's first conv: 1024 x 512, not a 512 x 1 column
    ((8, 3, 3, 3), (0, 1)),  # equal sizes: the earlier dim, so a 3x3 conv opens as out x in
    ((64, 3, 7, 7), (0, 2)),  # the two largest, rows before columns
    ((2, 3, 4), (1, 2)),
    ((5, 6, 7, 8), (2, 3)),
    ((3, 9, 3), (0, 1)),
    ((64, 1, 1), (1, 0)),  # one dim larger than 1: it is the columns, shown as one row
    ((1, 1, 1), (1, 2)),
])
def test_default_view_dims(shape, dims):
    assert default_view_dims(shape) == dims


@pytest.mark.parametrize("shape", [(64, 3, 1, 1), (1, 64, 1, 1), (1024, 1, 512, 1), (4, 1, 1, 9, 1)])
def test_a_size_1_dim_is_never_chosen_while_two_are_larger(shape):
    row, col = default_view_dims(shape)
    big = [d for d, n in enumerate(shape) if n > 1]
    if len(big) >= 2:
        assert shape[row] > 1 and shape[col] > 1 and row < col
    else:
        assert shape[col] > 1


@pytest.mark.parametrize("shape", [(50257, 768), (10**8,), (3, 100_000), (64, 3, 7, 7), (1000, 1000, 3), (4097,),
                                   (5,), (0, 4)])
def test_sample_region_stays_within_the_budget_and_near_each_row_s_start(shape):
    text = sample_region(shape)
    region = parse_region(text, shape)
    assert math.prod(region.shape) <= SAMPLE_BUDGET
    assert math.prod(region.shape) >= min(math.prod(shape), 64)  # still a sample worth looking at
    last = region.index[-1] if isinstance(region.index, tuple) and region.index else None
    if isinstance(last, slice) and last.step is not None:
        assert last.step <= MAX_COLUMN_STEP


def test_looks_constant():
    assert looks_constant(torch.zeros(5, 5))
    assert looks_constant(torch.full((3,), float("nan")))
    assert not looks_constant(torch.tensor([[0.0, 0.0], [0.0, 1e-8]]))
    assert looks_constant(torch.ones(4, dtype=torch.int64)) and not looks_constant(torch.arange(4))
    assert looks_constant(torch.zeros(3, dtype=torch.bfloat16))


class _ZeroFirst(nn.Module):
    """The first parameter is a zero-initialised matrix (a LoRA B, a ViT's zero head), then a bias."""

    def __init__(self):
        super().__init__()
        self.zero_matrix = nn.Parameter(torch.zeros(6, 4))
        self.bias = nn.Parameter(torch.zeros(4))
        self.constant = nn.Parameter(torch.full((4, 4), 0.5))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x @ self.zero_matrix.T[:4] + self.bias)


def test_the_first_tensor_shown_is_the_first_non_constant_weight_matrix():
    assert first_tensor_to_show(paramedit.open_session(_ZeroFirst())) == "fc.weight"


def test_falls_back_to_the_first_matrix_then_the_first_tensor():
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.zero_()
    assert first_tensor_to_show(paramedit.open_session(model)) == "weight"
    assert first_tensor_to_show(paramedit.open_session(nn.LayerNorm(4))) == "weight"


def test_deciding_reads_a_sample_not_the_whole_tensor(tmp_path, monkeypatch):
    """A 48 MB all-zero embedding opened mapped from its file: only a few thousand values are read."""
    path = tmp_path / "big.safetensors"
    save_file({"embed": torch.zeros(12_000, 1000), "proj": torch.randn(1000, 8)}, str(path))
    session = paramedit.open_session(None, path)
    read: list[int] = []
    preview = Session.preview

    def counting_preview(self, name, index="[...]"):
        values, mask = preview(self, name, index)
        read.append(values.numel())
        return values, mask

    monkeypatch.setattr(Session, "preview", counting_preview)
    assert first_tensor_to_show(session) == "proj"
    assert read and max(read) <= SAMPLE_BUDGET
