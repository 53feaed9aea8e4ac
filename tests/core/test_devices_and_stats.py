"""Devices, stats, and commits on the model's own device (CUDA tests skip without a GPU)."""

from __future__ import annotations

import math

import pytest
import torch

import paramedit
from paramedit.core.errors import DeviceError
from paramedit.core.model.devices import available_devices, parse_device
from paramedit.core.tensor_tree import tensor_stats


def test_available_devices_starts_with_cpu():
    devices = available_devices()
    assert devices[0] == "cpu"
    assert all(d == "cpu" or d == "mps" or d.startswith("cuda:") for d in devices)


def test_unknown_device_is_a_clear_error():
    with pytest.raises(DeviceError, match="not available"):
        parse_device("cuda:99")
    with pytest.raises(DeviceError, match="not a device name"):
        parse_device("gpu please")


def test_stats_are_nan_aware():
    t = torch.tensor([[1.0, -3.0, float("nan")], [0.0, float("inf"), 2.0]])
    s = tensor_stats(t)
    assert (s.min, s.max, s.nan, s.inf, s.zeros, s.numel) == (-3.0, 2.0, 1, 1, 1, 6)
    assert math.isclose(s.mean, 0.0) and math.isclose(s.norm, math.sqrt(14))
    assert tensor_stats(torch.zeros(0)).numel == 0
    i = tensor_stats(torch.tensor([1, 2, 3], dtype=torch.int8))
    assert (i.min, i.max, i.mean) == (1.0, 3.0, 2.0)


@pytest.mark.parametrize("dtype", [d for d in (getattr(torch, n, None) for n in (
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")) if d is not None])
def test_stats_of_float8_tensors(dtype):
    """Found by a review: torch has no isnan/isinf for float8, and stats raised NotImplementedError."""
    t = torch.tensor([[0.5, -2.0], [0.0, 1.0]]).to(dtype)
    s = tensor_stats(t)
    assert (s.min, s.max, s.zeros, s.nan, s.numel) == (-2.0, 1.0, 1, 0, 4)


def test_session_stats_and_events(models_py, linear_ckpt):
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    seen = []
    s.events.connect("committed", lambda record, checks: seen.append(record.names))
    s.events.connect("undone", lambda record, checks: seen.append(("undo", record.names)))
    s.stage("fc.bias", "[...]", 0.0)
    s.commit()
    s.undo()
    assert seen == [["fc.bias"], ("undo", ["fc.bias"])]
    assert s.stats("fc.bias").numel == 3


@pytest.mark.cuda
def test_commit_and_backward_on_cuda(models_py, linear_ckpt):
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt, device="cuda:0")
    w = s.tensor("fc.weight")
    assert w.device.type == "cuda"
    ptr = w.data_ptr()
    s.stage("fc.weight", "[0, :]", 0.5)
    checks = s.commit()
    assert all(c.ok for c in checks) and w.data_ptr() == ptr and w.device.type == "cuda"
    assert torch.equal(w[0].cpu(), torch.full((5,), 0.5))
    report = s.run_backward()
    assert report.ok and report.device.startswith("cuda")
    s.undo()
    assert s.changed_count("fc.weight") == 0


@pytest.mark.cuda
def test_move_between_cpu_and_cuda_keeps_parameter_objects(models_py):
    s = paramedit.open_session(f"{models_py}:Net")
    w = s.tensor("fc.weight")
    s.to("cuda:0")
    assert s.model.fc.weight is w and w.device.type == "cuda"
    s.stage("fc.bias", "[1]", 2.0)
    s.commit()
    s.to("cpu")
    assert s.model.fc.weight is w and s.tensor("fc.bias")[1].item() == 2.0
