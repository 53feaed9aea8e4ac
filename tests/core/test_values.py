"""Validating values for a dtype: nothing overflows, truncates or turns NaN into an integer silently."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from paramedit.core.editing.values import (
    check_scalar,
    format_tsv,
    parse_number,
    parse_tsv,
    stored_value,
    to_values,
    tsv_to_values,
)
from paramedit.core.errors import ValueValidationError

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INTS = [torch.int8, torch.uint8, torch.int32, torch.int64]
ALL = [*FLOATS, *INTS, torch.bool]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", 1.5),
        ("-3", -3),
        ("+7", 7),
        ("1e-3", 0.001),
        ("2E3", 2000.0),
        (" 2 ", 2),
        ("\t-0.25\n", -0.25),
        ("1.", 1.0),
        (".5", 0.5),
        ("-0.0", -0.0),
        ("inf", math.inf),
        ("+inf", math.inf),
        ("-inf", -math.inf),
        ("Infinity", math.inf),
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("1e-400", 0.0),
    ],
)
def test_parse_number_accepts(text, expected):
    result = parse_number(text)
    assert result == expected and type(result) is type(expected)
    if isinstance(expected, float):
        assert math.copysign(1, result) == math.copysign(1, expected)


@pytest.mark.parametrize("text", ["nan", "NaN", "-nan", "+nan"])
def test_parse_number_nan(text):
    assert math.isnan(parse_number(text))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty value"),
        ("   ", "empty value"),
        ("abc", "not a number"),
        ("1,5", "use a point (.) as the decimal separator"),
        ("1,000.5", "decimal separator"),
        ("1 000", "spaces inside a number"),
        ("0x10", "only decimal numbers"),
        ("0b101", "only decimal numbers"),
        ("1.5.2", "not a number"),
        ("1_000", "not a number"),
        ("1e", "not a number"),
        ("--1", "not a number"),
        ("١٢", "not a number"),
        ("1e400", "too large"),
        ("1" * 500, "longer than"),
    ],
)
def test_parse_number_rejects(text, fragment):
    with pytest.raises(ValueValidationError) as info:
        parse_number(text)
    assert fragment in str(info.value)


def test_parse_number_needs_text():
    with pytest.raises(ValueValidationError):
        parse_number(1.5)  # type: ignore[arg-type]


# (value, dtype, fragment of the error)
SCALAR_REJECTIONS = [
    (1e40, torch.float16, "out of range for float16"),
    (1e40, torch.bfloat16, "out of range for bfloat16"),
    (1e40, torch.float32, "out of range for float32"),
    (-1e40, torch.float32, "out of range for float32"),
    (65520, torch.float16, "out of range for float16"),
    (10**400, torch.float64, "out of range for float64"),
    (300, torch.int8, "out of range for int8 (-128 to 127)"),
    (-129, torch.int8, "out of range for int8"),
    (-1, torch.uint8, "out of range for uint8 (0 to 255)"),
    (256, torch.uint8, "out of range for uint8"),
    (2**31, torch.int32, "out of range for int32"),
    (2**63, torch.int64, "out of range for int64"),
    (2.5, torch.int8, "fractional part; int8 stores whole numbers"),
    (2.5, torch.uint8, "fractional part"),
    (0.1, torch.int32, "fractional part"),
    (2.5, torch.int64, "fractional part"),
    (math.nan, torch.int8, "no NaN or infinity"),
    (math.inf, torch.int32, "no NaN or infinity"),
    (-math.inf, torch.int64, "no NaN or infinity"),
    (math.nan, torch.uint8, "no NaN"),
    (2, torch.bool, "only True/False or 0/1"),
    (-1, torch.bool, "only True/False"),
    (0.5, torch.bool, "only True/False"),
    (math.nan, torch.bool, "only True/False"),
    ("1", torch.float32, "got the text"),
    (None, torch.float32, "expected a number"),
    ([1], torch.float32, "expected a number"),
    (1 + 2j, torch.float32, "complex"),
    (1.0, torch.complex64, "complex tensors are read-only in paramedit"),
    (torch.tensor([1.0, 2.0]), torch.float32, "single number"),
]


@pytest.mark.parametrize(("value", "dtype", "fragment"), SCALAR_REJECTIONS)
def test_check_scalar_rejects(value, dtype, fragment):
    with pytest.raises(ValueValidationError) as info:
        check_scalar(value, dtype)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        (2.0, torch.int8, 2),
        (-128, torch.int8, -128),
        (127, torch.int8, 127),
        (255, torch.uint8, 255),
        (True, torch.int32, 1),
        (2**63 - 1, torch.int64, 2**63 - 1),
        (-(2**63), torch.int64, -(2**63)),
        (True, torch.bool, True),
        (0, torch.bool, False),
        (1, torch.bool, True),
        (1.0, torch.bool, True),
        (1e40, torch.float64, 1e40),
        (65504, torch.float16, 65504.0),
        (65519, torch.float16, 65519.0),  # rounds down to 65504, not overflow
        (3.4028235e38, torch.float32, 3.4028235e38),  # the printed float32 max rounds to it
        (1e-50, torch.float16, 1e-50),  # below precision: rounds to 0, fine
        (0.1, torch.bfloat16, 0.1),
        (math.inf, torch.float16, math.inf),
        (-math.inf, torch.bfloat16, -math.inf),
        (3, torch.float32, 3.0),
        (np.float32(1.5), torch.float64, 1.5),
        (np.int64(7), torch.int8, 7),
        (np.bool_(True), torch.bool, True),
        (torch.tensor(3), torch.int8, 3),
        (torch.tensor([2.0]), torch.int8, 2),
    ],
)
def test_check_scalar_accepts(value, dtype, expected):
    result = check_scalar(value, dtype)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_is_fine_for_floats(dtype):
    assert math.isnan(check_scalar(math.nan, dtype))


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        (0.1, torch.bfloat16, 0.10009765625),
        (0.1, torch.float32, 0.10000000149011612),
        (0.1, torch.float16, 0.0999755859375),
        (0.1, torch.float64, 0.1),
        (1e-50, torch.float32, 0.0),
        (65519, torch.float16, 65504.0),
        (16777217, torch.float32, 16777216.0),
        (2.0, torch.int8, 2),
        (1, torch.bool, True),
    ],
)
def test_stored_value(value, dtype, expected):
    result = stored_value(value, dtype)
    assert result == expected and type(result) is type(expected)


def test_stored_value_validates():
    with pytest.raises(ValueValidationError):
        stored_value(1e40, torch.float32)


@pytest.mark.parametrize("dtype", ALL)
def test_to_values_scalar_broadcasts(dtype):
    result = to_values(1, dtype, (2, 3))
    assert result.shape == (2, 3) and result.dtype == dtype and result.device.type == "cpu"
    assert bool((result == 1).all())
    assert result.is_contiguous()


def test_to_values_rounds_like_stored_value():
    result = to_values(0.1, torch.bfloat16, (2,))
    assert result[0].item() == stored_value(0.1, torch.bfloat16)
    assert to_values(0.5, torch.float32, ()).shape == ()


@pytest.mark.parametrize("dtype", ALL)
def test_to_values_nested_list(dtype):
    result = to_values([[1, 0], [0, 1]], dtype, [2, 2])
    assert result.dtype == dtype and result.tolist() == [[1, 0], [0, 1]]


def test_to_values_numpy_and_tensor_sources():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    result = to_values(array, torch.int8, (2, 3))
    assert result.dtype == torch.int8 and result.tolist() == array.astype(int).tolist()
    source = torch.arange(6.0).reshape(2, 3)
    result = to_values(source, torch.float16, torch.Size([2, 3]))
    assert result.dtype == torch.float16 and torch.equal(result.float(), source)
    result[0, 0] = 99  # a new tensor: the source is never aliased
    assert source[0, 0] == 0
    same = to_values(source, torch.float32, (2, 3))
    assert same.data_ptr() != source.data_ptr()
    assert to_values(np.array([1, 2], dtype=np.uint32), torch.int8, (2,)).tolist() == [1, 2]
    assert to_values(np.array([[1, 2]], dtype=object), torch.int8, (1, 2)).tolist() == [[1, 2]]
    assert to_values(np.float64(2.0), torch.int8, (2,)).tolist() == [2, 2]


def test_to_values_zero_dim_sources_broadcast():
    assert to_values(torch.tensor(5.0), torch.int8, (2, 2)).tolist() == [[5, 5], [5, 5]]
    assert to_values(np.array(1), torch.bool, (3,)).tolist() == [True, True, True]


# (value, dtype, shape, fragment)
VALUE_REJECTIONS = [
    ([[1, 2], [3, 400]], torch.int8, (2, 2), "value at [1, 1] (400) is out of range for int8"),
    ([[1, 2.5], [3, 4]], torch.int8, (2, 2), "value at [0, 1] (2.5) has a fractional part"),
    ([-1, 2], torch.uint8, (2,), "value at [0] (-1) is out of range for uint8"),
    ([1.0, math.nan], torch.int32, (2,), "value at [1] (nan) cannot be stored in int32"),
    ([0, 1, 2], torch.bool, (3,), "value at [2] (2) cannot be stored in bool"),
    (np.array([1e40, 1.0]), torch.float32, (2,), "value at [0] (1e+40) is out of range for float32"),
    (np.array([1.0, 1e5]), torch.float16, (2,), "value at [1] (100000.0) is out of range for float16"),
    (torch.tensor([70000]), torch.float16, (1,), "out of range for float16"),
    (torch.tensor([1e39], dtype=torch.float64), torch.bfloat16, (1,), "out of range for bfloat16"),
    (torch.tensor([2**40]), torch.int32, (1,), "out of range for int32"),
    (torch.tensor([0.0, math.inf]), torch.int64, (2,), "no NaN or infinity"),
    ([2**70, 1], torch.int64, (2,), "element [0]"),
    ([[1, 2], [3]], torch.int8, (2, 2), "ragged list: element [1] has 1 item(s), expected 2"),
    ([[1, 2], 3], torch.int8, (2, 2), "ragged list: element [1] has a single value"),
    ([1, [2, 3]], torch.int8, (2,), "element [1] is a list"),
    ([1, 2, 3], torch.float32, (2, 2), "expected values of shape [2, 2], got shape [3]"),
    (torch.zeros(3, 2), torch.float32, (2, 3), "expected values of shape [2, 3], got shape [3, 2]"),
    (["a", 1], torch.float32, (2,), "element [0]: expected a number, got the text 'a'"),
    ([None, 1], torch.float32, (2,), "element [0]"),
    ("1.5", torch.float32, (2,), "got text"),
    (None, torch.float32, (2,), "no value"),
    (torch.tensor([1 + 1j]), torch.float32, (1,), "complex tensors are read-only"),
    (1.0, torch.complex64, (1,), "complex tensors are read-only"),
    (np.array(["a"]), torch.float32, (1,), "NumPy array"),
    (np.array([1 + 1j]), torch.float32, (1,), "complex"),
    ({"a": 1}, torch.float32, (1,), "expected a number"),
]


@pytest.mark.parametrize(("value", "dtype", "shape", "fragment"), VALUE_REJECTIONS)
def test_to_values_rejects(value, dtype, shape, fragment):
    with pytest.raises(ValueValidationError) as info:
        to_values(value, dtype, shape)
    assert fragment in str(info.value)


def test_float_source_at_the_int64_boundary_is_compared_exactly():
    # 2.0**63 is one past int64's max; a float comparison against 2**63 - 1 would round and miss it.
    with pytest.raises(ValueValidationError, match=r"value at \[1\]"):
        to_values(torch.tensor([0.0, 2.0**63]), torch.int64, (2,))
    assert to_values(torch.tensor([0.0, -(2.0**63)]), torch.int64, (2,))[1].item() == -(2**63)


def test_big_tensor_is_validated_vectorised():
    big = torch.randn(2_000_000, dtype=torch.float64)
    start = time.perf_counter()
    result = to_values(big, torch.float32, big.shape)
    assert time.perf_counter() - start < 2.0
    assert torch.equal(result, big.to(torch.float32))
    big[1_234_567] = 0.5
    with pytest.raises(ValueValidationError, match=r"value at \[1234567\] \(0.5\)"):
        to_values(big.round() + (big == 0.5) * 0.5, torch.int32, big.shape)


def test_parse_tsv():
    assert parse_tsv("1\t2\n3\t4") == [["1", "2"], ["3", "4"]]
    assert parse_tsv("1\t2\r\n3\t4\r\n") == [["1", "2"], ["3", "4"]]
    assert parse_tsv("5\n") == [["5"]]
    assert parse_tsv("1\t\n") == [["1", ""]]
    assert parse_tsv("1\n\n") == [["1"], [""]]  # only one trailing newline is ignored


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "empty"), ("\n", "empty"), ("\r\n", "empty"), ("1\t2\n3", "row 2 has 1 cell(s), but row 1 has 2"), ("1\n2\t3\n4", "row 2")],
)
def test_parse_tsv_rejects(text, fragment):
    with pytest.raises(ValueValidationError) as info:
        parse_tsv(text)
    assert fragment in str(info.value)


def test_tsv_to_values():
    result = tsv_to_values("1\t2.5\n-3\t1e-3\n", torch.float64)
    assert result.dtype == torch.float64 and result.tolist() == [[1.0, 2.5], [-3.0, 0.001]]
    assert tsv_to_values("1\t0\n0\t1", torch.bool).tolist() == [[True, False], [False, True]]
    assert tsv_to_values("1\t2", torch.int8, (1, 2)).tolist() == [[1, 2]]
    # A single column or row fills a 1-D region, a single cell a 0-d one.
    assert tsv_to_values("1\n2\n3", torch.int8, (3,)).tolist() == [1, 2, 3]
    assert tsv_to_values("1\t2\t3", torch.int8, [3]).tolist() == [1, 2, 3]
    assert tsv_to_values("4", torch.int8, ()).tolist() == 4


@pytest.mark.parametrize(
    ("text", "dtype", "shape", "fragment"),
    [
        ("1\t2\n3\tx", torch.float32, None, "row 2, column 2: 'x' is not a number"),
        ("1\t\n3\t4", torch.float32, None, "row 1, column 2: empty value"),
        ("1,5", torch.float32, None, "row 1, column 1: '1,5': use a point"),
        ("1\t300", torch.int8, None, "row 1, column 2: 300 is out of range for int8"),
        ("1.5", torch.int32, None, "fractional part"),
        ("nan", torch.int64, None, "no NaN"),
        ("1e40", torch.float16, None, "out of range for float16"),
        ("2", torch.bool, None, "only True/False"),
        ("1\t2\n3\t4", torch.int8, (4,), "pasted 2×2 cells, but the region has shape [4]"),
        ("1\t2", torch.int8, (2, 1), "pasted 1×2 cells"),
        ("1", torch.complex64, None, "complex"),
    ],
)
def test_tsv_to_values_rejects_with_row_and_column(text, dtype, shape, fragment):
    with pytest.raises(ValueValidationError) as info:
        tsv_to_values(text, dtype, shape)
    assert fragment in str(info.value)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    both_nan = torch.isnan(a.float()) & torch.isnan(b.float()) if a.is_floating_point() else torch.zeros_like(a, dtype=torch.bool)
    view = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    same = a.view(view) == b.view(view) if a.is_floating_point() else a == b
    return bool((same | both_nan).all())


SPECIAL = [0.1, -0.0, 0.0, 1e-5, 1 / 3, 2.0 / 3, 1e20, -1e-20, 123456.789, math.inf, -math.inf, math.nan, 65504.0, 6e-8]


@pytest.mark.parametrize("dtype", FLOATS)
def test_format_tsv_roundtrips_exactly(dtype):
    generator = torch.Generator().manual_seed(0)
    values = torch.cat([torch.tensor(SPECIAL, dtype=torch.float64), torch.randn(46, generator=generator, dtype=torch.float64) * 1e3])
    tensor = values.to(dtype).reshape(6, 10)
    text = format_tsv(tensor)
    assert _same_bits(tsv_to_values(text, dtype, tensor.shape), tensor)


def test_format_tsv_is_short_and_readable():
    tensor = torch.tensor([[0.1, 1.0], [100.0, -2.5]], dtype=torch.float32)
    assert format_tsv(tensor) == "0.1\t1.0\n100.0\t-2.5"
    assert format_tsv(torch.tensor([0.1], dtype=torch.bfloat16)) == "0.1"
    assert format_tsv(torch.tensor([0.1], dtype=torch.float64)) == "0.1"


def test_format_tsv_shapes_and_kinds():
    assert format_tsv(torch.tensor(3)) == "3"
    assert format_tsv(torch.tensor([1, 2, 3], dtype=torch.int8)) == "1\n2\n3"  # 1-D: one column
    assert format_tsv(torch.tensor([[True, False]])) == "true\tfalse"
    vector = torch.tensor([1.5, -2.0])
    assert torch.equal(tsv_to_values(format_tsv(vector), vector.dtype, vector.shape), vector)
    for dtype in INTS:
        tensor = torch.tensor([[0, 1], [2, 100]], dtype=dtype)
        assert torch.equal(tsv_to_values(format_tsv(tensor), dtype, tensor.shape), tensor)
    extreme = torch.tensor([-(2**63), 2**63 - 1])
    assert torch.equal(tsv_to_values(format_tsv(extreme), torch.int64, (2,)), extreme)


def test_format_tsv_rejects():
    with pytest.raises(ValueValidationError, match="0-, 1- or 2-D"):
        format_tsv(torch.zeros(2, 2, 2))
    with pytest.raises(ValueValidationError, match="complex"):
        format_tsv(torch.zeros(2, dtype=torch.complex64))
    with pytest.raises(ValueValidationError):
        format_tsv([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "ok"),
    [(448, True), (449, True), (463.9, True), (464, False), (-1000, False), (math.inf, False), (math.nan, True)],
)
def test_saturating_float8_uses_the_rounding_threshold(value, ok):
    # float8_e4m3fn has no infinity and torch's cast saturates; 449 rounds to 448, 464 does not fit.
    if ok:
        check_scalar(value, torch.float8_e4m3fn)
        to_values([value], torch.float8_e4m3fn, (1,))
    else:
        with pytest.raises(ValueValidationError, match="out of range for float8_e4m3fn"):
            check_scalar(value, torch.float8_e4m3fn)
        with pytest.raises(ValueValidationError, match="out of range for float8_e4m3fn"):
            to_values([value], torch.float8_e4m3fn, (1,))


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_float8_sources_and_roundtrip(dtype):
    tensor = torch.tensor([0.1, 3.5, -2.0, 0.0, 1e-3]).to(dtype)
    assert _same_bits(tsv_to_values(format_tsv(tensor), dtype, tensor.shape), tensor)
    assert to_values(tensor, torch.float32, (5,)).tolist() == tensor.float().tolist()
    assert to_values(torch.tensor([1.0, 2.0]).to(dtype), torch.int8, (2,)).tolist() == [1, 2]
    assert math.isinf(stored_value(math.inf, torch.float8_e5m2))
