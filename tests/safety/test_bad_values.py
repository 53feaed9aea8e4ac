"""Issue 5, "bad values": every one is rejected before anything is written, bits unchanged.

Complements tests/core/test_session_edits.py (text "abc", 1e40 into float32, a list of the
wrong length, index 7 of 3 rows, advanced indexing, unknown names, bad formulas and inits,
copy shape mismatch, fractions/NaN into an int64 buffer, float16 overflow) with the cases it
does not have: empty text, locale commas, overflow for every dtype, NaN/Inf into integers and
bool, pastes of the wrong shape or with ragged rows, and more out-of-range indices.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import paramedit
from paramedit.core.editing.regions import parse_region
from paramedit.core.editing.values import check_scalar, parse_number, tsv_to_values
from paramedit.core.errors import ParameditError, RegionError, ValueValidationError


class AllDtypes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f32 = nn.Parameter(torch.linspace(-1, 1, 6).reshape(2, 3))
        self.f16 = nn.Parameter(torch.linspace(-1, 1, 6).reshape(2, 3).half())
        self.bf16 = nn.Parameter(torch.linspace(-1, 1, 6).reshape(2, 3).bfloat16())
        self.f64 = nn.Parameter(torch.linspace(-1, 1, 6).reshape(2, 3).double())
        for name, dtype in [("i8", torch.int8), ("u8", torch.uint8), ("i16", torch.int16), ("i32", torch.int32),
                            ("i64", torch.int64), ("u16", torch.uint16)]:  # fmt: skip
            self.register_buffer(name, torch.arange(6).reshape(2, 3).to(dtype))
        self.register_buffer("b", torch.tensor([[True, False, True], [False, True, False]]))
        self.register_buffer("f8", torch.linspace(-1, 1, 6).reshape(2, 3).to(torch.float8_e4m3fn))
        self.register_buffer("f8e5", torch.linspace(-1, 1, 6).reshape(2, 3).to(torch.float8_e5m2))


def bits(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


@pytest.fixture
def session():
    return paramedit.open_session(AllDtypes())


def refused(s, target: str, index: str, value, error: type[ParameditError] = ValueValidationError) -> str:
    before = {n: bits(s.tensor(n)) for n in s.names()}
    with pytest.raises(error) as info:
        s.stage(target, index, value)
    assert s.staged == []
    s.commit()  # nothing staged: nothing written
    assert {n: bits(s.tensor(n)) for n in s.names()} == before
    assert not s.can_undo and not s.unsaved
    return info.value.message


# ---------------------------------------------------------------- typed text (the table cell path)

TYPED = [
    ("", "empty value"), ("   ", "empty value"), ("\t\n", "empty value"),
    ("1,5", "decimal separator"), ("-1,5", "decimal separator"), ("1.000,25", "decimal separator"),
    ("1,000", "decimal separator"), ("1 000", "spaces inside a number"), ("0x10", "only decimal"),
    ("abc", "is not a number"), ("1e", "is not a number"), ("--1", "is not a number"), ("1_000", "is not a number"),
    ("１", "is not a number"), ("1e999", "too large"), ("½", "is not a number"), ("x" * 500, "longer than"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "problem"), TYPED)
def test_typed_text_is_refused_with_the_reason(session, text, problem) -> None:
    with pytest.raises(ValueValidationError, match=problem):
        parse_number(text)
    message = refused(session, "f32", "[0, 0]", text)  # and text never reaches a tensor unparsed
    assert "text" in message


# ---------------------------------------------------------------- what a dtype cannot hold

OVERFLOW = [
    ("i8", 128), ("i8", -129), ("u8", -1), ("u8", 256), ("i16", 32768), ("i32", 2**31), ("i64", 2**63),
    ("i64", -(2**63) - 1), ("u16", 65536), ("u16", -1), ("f16", 65520.0), ("f16", 1e6), ("bf16", 3.4e39),
    ("f32", 3.5e38), ("f8", 480.0), ("f8", -1e4), ("f8e5", 61440.0), ("b", 2), ("b", -1), ("f64", 10**400),
]  # fmt: skip


@pytest.mark.parametrize(("target", "value"), OVERFLOW)
def test_overflow_for_the_dtype_is_refused(session, target, value) -> None:
    message = refused(session, target, "[0, 0]", value)
    assert "out of range" in message or "cannot be stored" in message or "too large" in message


@pytest.mark.parametrize("target", ["i8", "u8", "i16", "i32", "i64", "u16"])
@pytest.mark.parametrize("value", [0.5, -2.25, 1e-300, 7.000001])
def test_fractions_into_integer_tensors_are_refused(session, target, value) -> None:
    assert "fractional part" in refused(session, target, "[1, 1]", value)


@pytest.mark.parametrize("target", ["i8", "u8", "i32", "i64", "b"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_where_the_dtype_has_none(session, target, value) -> None:
    assert "cannot be stored" in refused(session, target, "[0, :]", value)


@pytest.mark.parametrize("target", ["f8"])  # float8_e4m3fn has NaN but no infinity
def test_inf_into_a_float_without_infinity(session, target) -> None:
    assert "out of range" in refused(session, target, "[...]", math.inf)


def test_a_bad_element_among_good_ones_is_named_by_position(session) -> None:
    message = refused(session, "i8", "[...]", [[1, 2, 3], [4, 500, 6]])
    assert "[1, 1]" in message and "500" in message
    message = refused(session, "u8", "[...]", np.array([[1, 2, 3], [4, 5, -1]]))
    assert "-1" in message
    message = refused(session, "f16", "[0]", torch.tensor([1.0, 1e5, 2.0]))
    assert "[1]" in message


@pytest.mark.parametrize(("value", "problem"), [
    (None, "no value"), ("", "got text"), ([], "shape"), ([[1, 2, 3], [4, 5]], "ragged"), ([1, [2, 3], 4], "ragged"),
    ([1, "2", 3], "element [1]"), (1 + 2j, "complex"), (object(), "expected a number"), (b"1", "got text"),
    (np.array(["1", "2", "3"]), "NumPy array"), (torch.ones(3, dtype=torch.complex64), "complex"),
    (torch.ones(4), "shape"), (np.ones((3, 1)), "shape"),
])  # fmt: skip
def test_values_that_are_not_numbers_of_the_region_shape(session, value, problem) -> None:
    if value is None:  # an Edit refuses a 'set' without a value before a session sees it
        from paramedit.core.errors import EditError

        assert "value" in refused(session, "f32", "[0]", value, EditError)
        return
    assert problem in refused(session, "f32", "[0]", value)


# ---------------------------------------------------------------- pastes

PASTES = [
    ("1\t2\n3\t4\n", (2, 3), "pasted 2×2 cells"),
    ("1\t2\t3\n4\t5\t6\n7\t8\t9\n", (2, 3), "pasted 3×3 cells"),
    ("1\t2\t3\n4\t5\n", (2, 3), "row 2 has 2 cell(s)"),
    ("1\t2\t3\n4\t5\t6\t7\n", (2, 3), "row 2 has 4 cell(s)"),
    ("1\t2\t3\n\n4\t5\t6\n", (2, 3), "row 2 has 1 cell(s)"),
    ("1,5\t2\t3\n4\t5\t6\n", (2, 3), "row 1, column 1"),
    ("1\t\t3\n4\t5\t6\n", (2, 3), "row 1, column 2: empty value"),
    ("1;2;3\n4;5;6\n", (2, 3), "row 1, column 1"),
    ("", (2, 3), "nothing to paste"),
    ("1\t2\t3\n4\t5\tx\n", (2, 3), "row 2, column 3"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "shape", "problem"), PASTES)
@pytest.mark.parametrize("target", ["f32", "i16", "bf16"])
def test_bad_pastes_are_refused_before_staging(session, text, shape, problem, target) -> None:
    region = parse_region("[...]", session.tensor(target).shape)
    assert region.shape == shape
    with pytest.raises(ValueValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        tsv_to_values(text, session.tensor(target).dtype, region.shape)
    refused(session, target, "[...]", text)  # raw paste text is never written either


@pytest.mark.parametrize(("text", "target", "problem"), [
    ("1\t2\t300\n4\t5\t6", "i8", "row 1, column 3: 300 is out of range"),
    ("1\t2\t3\n4\t5\t6.5", "u8", "row 2, column 3: 6.5 has a fractional part"),
    ("1\t2\t3\n4\t5\tnan", "i32", "row 2, column 3: nan cannot be stored"),
    ("true\tfalse\t2\n0\t1\t0", "b", "row 1, column 3"),
    ("1\t2\t3\n4\t5\t1e39", "f32", "out of range for float32"),
])  # fmt: skip
def test_pastes_with_a_value_the_dtype_cannot_hold(session, text, target, problem) -> None:
    with pytest.raises(ValueValidationError, match=problem):
        tsv_to_values(text, session.tensor(target).dtype, (2, 3))


def test_a_good_paste_through_the_same_path_is_written(session) -> None:
    values = tsv_to_values("1\t2\t3\r\n4\t5\t6\r\n", torch.int16, (2, 3))
    session.stage("i16", "[...]", values)
    session.commit()
    assert session.tensor("i16").tolist() == [[1, 2, 3], [4, 5, 6]]


# ---------------------------------------------------------------- indices out of range

INDICES = [
    ("[2, 0]", "out of range for dim 0"), ("[-3, 0]", "out of range for dim 0"), ("[0, 3]", "out of range for dim 1"),
    ("[0, -4]", "out of range for dim 1"), ("[0, 0, 0]", "too many indices"), ("[..., ..., 0]", "one ellipsis"),
    ("[0, ::-1]", "step must be at least 1"), ("[0, ::0]", "step must be at least 1"), ("[0.5]", "whole numbers"),
    ("[True]", "boolean"), ("[None]", "None"), ("[[0, 1]]", "advanced indexing"), ("[x]", "names"),
    ("[0, 1", "unbalanced"), ("[9223372036854775808]", "too large"), ("[0:1, (0, 1)]", "lists of indices"),
]  # fmt: skip


@pytest.mark.parametrize(("index", "problem"), INDICES)
def test_indices_out_of_range_or_not_basic(session, index, problem) -> None:
    assert problem in refused(session, "f32", index, 1.0, RegionError)


def test_slices_past_the_end_clamp_like_numpy_and_write_nothing_outside(session) -> None:
    """Not an error: NumPy clamps slice bounds. The write stays inside the tensor."""
    before = session.tensor("f32").detach().clone()
    session.stage("f32", "[5:, 1:100]", 9.0)  # an empty region: rows 5.. do not exist
    session.commit()
    assert torch.equal(session.tensor("f32").detach(), before)


def test_check_scalar_agrees_with_the_session(session) -> None:
    """The validation the GUI does per cell is the one the session does per edit."""
    for target, value in OVERFLOW:
        dtype = session.tensor(target).dtype
        with pytest.raises(ValueValidationError):
            check_scalar(value, dtype)
