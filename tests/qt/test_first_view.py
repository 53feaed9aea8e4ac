"""Issue 9: what the window shows first must show something.

A model opened on an all-zero bias (a blank heatmap), and every 1x1 conv weight opened on its
last two dims, one number and a one-pixel heatmap.
"""

from __future__ import annotations

import torch
from torch import nn

import paramedit
from tests.qt.window_helpers import select_tensor


class ZeroFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(8, 4))  # zero-initialised, like a LoRA B matrix
        self.bias = nn.Parameter(torch.zeros(4))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x + self.bias)


class Convs(nn.Module):
    def __init__(self):
        super().__init__()
        self.downsample = nn.Conv2d(3, 64, 1, bias=False)  # [64, 3, 1, 1]
        self.lin = nn.Conv2d(64, 1, 1, bias=False)  # [1, 64, 1, 1], as LPIPS's trained layers
        self.crepe = nn.Conv2d(1, 16, (32, 1), bias=False)  # [16, 1, 32, 1]

    def forward(self, x):
        return self.lin(self.downsample(x))


def test_a_model_opens_on_its_first_non_constant_weight_matrix(make_window, qtbot):
    window = make_window(paramedit.open_session(ZeroFirst()))
    qtbot.waitUntil(lambda: window.editor.model.name != "", timeout=2000)
    assert window.editor.model.name == "fc.weight"
    model = window.editor.model
    assert (model.rowCount(), model.columnCount()) == (3, 4)
    image = window.editor.heatmap.image_item().image
    assert image is not None and image.shape[:2] == (3, 4) and float(image.max()) > float(image.min())


def test_one_by_one_convs_open_as_out_by_in(make_window, qtbot):
    window = make_window(paramedit.open_session(Convs()))
    model = window.editor.model
    for name, size, region in (("downsample.weight", (64, 3), "[:, :, 0, 0]"),
                               ("lin.weight", (1, 64), "[:, :, 0, 0]"),  # its 64 values in one row
                               ("crepe.weight", (16, 32), "[:, 0, :, 0]")):
        select_tensor(window, qtbot, name)
        assert (model.rowCount(), model.columnCount()) == size, name
        assert model.region_text() == region, name
        image = window.editor.heatmap.image_item().image
        assert image.shape[:2] == size, name  # not a one-pixel heatmap
