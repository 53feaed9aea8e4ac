"""Property: any valid commit followed by undo restores the exact bits (issue 2)."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paramedit

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.int64]


@st.composite
def tensor_and_region(draw):
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    parts = []
    for size in shape:
        if draw(st.booleans()):
            parts.append(str(draw(st.integers(-size, size - 1))))
        else:
            start = draw(st.integers(0, size))
            stop = draw(st.integers(start, size))
            step = draw(st.integers(1, 3))
            parts.append(f"{start}:{stop}:{step}")
    dtype = draw(st.sampled_from(DTYPES))
    return shape, dtype, "[" + ", ".join(parts) + "]" if parts else "[...]"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensor_and_region(), st.integers(-100, 100), st.integers(0, 2**31 - 1))
def test_commit_then_undo_restores_bits(case, value, seed):
    shape, dtype, index = case
    g = torch.Generator().manual_seed(seed)
    data = (torch.randn(shape, generator=g) * 50).to(dtype)
    param = torch.nn.Parameter(data, requires_grad=dtype.is_floating_point)
    module = torch.nn.Module()
    module.register_parameter("p", param)
    s = paramedit.open_session(module)
    before = param.detach().clone()
    s.stage("p", index, value)
    s.commit()
    assert s.tensor("p") is param
    region = param.detach()[s.history.records[-1].atoms[0].index]
    assert (region == torch.tensor(value, dtype=dtype)).all()
    s.undo()
    assert torch.equal(param.detach().reshape(-1).view(torch.uint8), before.reshape(-1).view(torch.uint8))
    s.redo()
    assert (param.detach()[s.history.records[-1].atoms[0].index] == torch.tensor(value, dtype=dtype)).all()
