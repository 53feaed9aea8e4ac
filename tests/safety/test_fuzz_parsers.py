"""Issue 5, "no bad input crashes it": property tests over every parser a user types into.

Index parser, formula language, value parsing per dtype, TSV paste, and a live Session: random
text, random near-valid text built from each grammar, hostile constructs. Each input either
gives a well-formed result or a ParameditError subclass; nothing else escapes, and a commit
either writes all of its regions or leaves every tensor bit-for-bit unchanged.

Every example is counted, and each rejection is classified by (error class, message with the
numbers and quoted parts blanked); ``pytest -s`` prints the totals when the module finishes.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import paramedit
from paramedit.core.editing.edits import Edit
from paramedit.core.editing.expression_functions import SIGNATURES
from paramedit.core.editing.expressions import parse_expression
from paramedit.core.editing.regions import parse_region
from paramedit.core.editing.values import check_scalar, parse_number, to_values, tsv_to_values
from paramedit.core.errors import (
    EditError,
    ExpressionError,
    ParameditError,
    RegionError,
    ValueValidationError,
)

TRIED: Counter[str] = Counter()
ACCEPTED: Counter[str] = Counter()
KINDS: set[str] = set()

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])  # fmt: skip


def _kind(exc: ParameditError) -> str:
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "Q", exc.message)
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", "S", text)
    text = re.sub(r"[-+]?\d[\d.,e+\-_]*", "N", text)
    return f"{type(exc).__name__}: {text[:80]}"


def rejected(exc: ParameditError, *allowed: type[ParameditError]) -> None:
    """Record a rejection; it must be one of ``allowed`` (default: any ParameditError)."""
    assert isinstance(exc, allowed or (ParameditError,)), f"{type(exc).__name__}: {exc}"
    assert exc.message and "Traceback" not in exc.message
    KINDS.add(_kind(exc))


@pytest.fixture(scope="module", autouse=True)
def report_totals() -> Iterator[None]:
    yield
    total = sum(TRIED.values())
    print(f"\nfuzz: {total} inputs tried ({dict(TRIED)}), accepted {dict(ACCEPTED)}; "
          f"{len(KINDS)} distinct failure kinds in {len({k.split(':')[0] for k in KINDS})} error classes")


def bits(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


# ---------------------------------------------------------------- regions

shapes = st.lists(st.integers(0, 5), max_size=4).map(tuple)
hostile_ints = st.one_of(st.integers(-8, 8), st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30]))
region_atoms = st.one_of(
    hostile_ints.map(str),
    st.sampled_from(["...", "", "None", "True", "1.5", "x", "[0, 1]", "(0,)", "'a'", "__import__('os')",
                     "1+1", "-~1", "::0", "::-1", ":: ", "0_0", "1e3", "0x10", "*a", "{}", "lambda: 0"]),
)  # fmt: skip


@st.composite
def near_valid_region(draw) -> str:
    """Index text from the grammar (ints, slices, ellipsis), then maybe damaged."""
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.integers(0, 7)) == 0:
            parts.append(draw(region_atoms))
        elif draw(st.booleans()):
            bounds = [draw(st.one_of(st.just(""), hostile_ints.map(str))) for _ in range(3)]
            parts.append(":".join(bounds[: draw(st.integers(2, 3))]))
        else:
            parts.append(draw(hostile_ints).__str__())
    sep = draw(st.sampled_from([",", ", ", " ,", ",", ", ", ",,", ";", "\t,"]))
    text = sep.join(parts)
    text = draw(st.sampled_from(["[{}]", "{}", "[{}]", " [ {} ] ", "[{}", "{}]", "[[{}]]"])).format(text)
    if draw(st.integers(0, 3)) == 0 and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(["", "[", "]", ":", ",", "-", "0", "…", "\x00", "\n"])) + text[at + 1 :]
    return text


@settings(FUZZ, max_examples=500)
@given(st.one_of(near_valid_region(), st.text(max_size=40)), shapes)
def test_region_parser_gives_a_view_of_the_right_shape_or_a_region_error(text: str, shape: tuple[int, ...]) -> None:
    TRIED["region"] += 1
    try:
        region = parse_region(text, shape)
    except ParameditError as exc:
        rejected(exc, RegionError)
        return
    ACCEPTED["region"] += 1
    array = np.arange(math.prod(shape)).reshape(shape)
    assert array[region.index].shape == region.shape
    assert len(region.index) == len(shape)
    assert parse_region(region.text, shape) == region


# ---------------------------------------------------------------- formulas

numbers = st.one_of(
    st.integers(-5, 5).map(str),
    st.sampled_from(["0", "1e308", "1e-320", "-0.0", "10**10**10", "2**64", "9" * 40, "nan", "inf", "-inf",
                     "0.5", "1_000", "0x7f", "1j"]),
)  # fmt: skip
names = st.sampled_from(["x", "pi", "e", "inf", "nan", "y", "__class__", "__builtins__", "open", "eval", "torch",
                         "self", "_", "zeros", "exec", "globals"])  # fmt: skip
BINARY = ["+", "-", "*", "/", "//", "%", "**", "@", "&", "|", "^", "<<", ">>", "==", "!=", "<", "<=", ">", ">=",
          " and ", " or ", " is ", " in ", " if x else "]  # fmt: skip
HOSTILE = [
    "x.data", "x.__class__.__mro__", "(1).__class__", "__import__('os').system('true')", "lambda: x",
    "[a for a in x]", "{a: 1 for a in x}", "'abc'", "f'{x}'", "b'x'", "(y := 1)", "*x", "{1, 2}", "{'a': 1}",
    "x[0]", "getattr(x, 'data')", "eval('1')", "open('/etc/passwd')", "zeros(10**12)", "ones(10**6, 10**6)",
    "randn(*(2, 3))", "abs(**{'x': 1})", "reshape(x, -1, -1)", "x @ x @ x", "arange(10**15)", "eye(10**7)",
    "full((10**5, 10**5), 1)", "linspace(0, 1, 10**12)", "randint(10, (10**9,))", "flip(x, 99)",
    "transpose(x, 0, 9)", "x ** 10**10", "2 ** -2 ** 64", "exp(1000.0)", "log(-1)", "sqrt(-x)", "x / 0",
    "x // 0", "x % 0", "1 // 0", "int(nan)", "round(x, 10**6)", "where(x, x)", "clamp(x, min=1, max=0)",
    "normal(0, 1, -1)", "x if x else x", "not x", "~x", "~1.5", "()", "[]", "[[1, 2], [3]]",
]  # fmt: skip


def formula(max_leaves: int = 12) -> st.SearchStrategy[str]:
    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        call = st.tuples(st.sampled_from(sorted(SIGNATURES)), st.lists(children, max_size=4),
                         st.lists(st.tuples(st.sampled_from(["min", "max", "end", "step", "decimals", "dims", "q"]),
                                            children), max_size=2))  # fmt: skip
        return st.one_of(
            st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
            st.tuples(st.sampled_from(["-", "+", "~", "not "]), children).map("".join),
            call.map(lambda c: f"{c[0]}({', '.join([*c[1], *(f'{k}={v}' for k, v in c[2])])})"),
            st.lists(children, max_size=3).map(lambda xs: f"({', '.join(xs)},)"),
            st.lists(children, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
        )

    return st.recursive(st.one_of(numbers, names, st.sampled_from(HOSTILE)), extend, max_leaves=max_leaves)


variables = st.sampled_from([
    torch.arange(6.0, dtype=torch.float64).reshape(2, 3) - 2.5,
    torch.tensor([[-3, 0, 7]], dtype=torch.int64),
    torch.tensor([True, False, True]),
    torch.tensor(0.5, dtype=torch.float64),
    torch.tensor([math.nan, math.inf, -0.0], dtype=torch.float64),
])  # fmt: skip


@settings(FUZZ, max_examples=600)
@given(st.one_of(formula(), st.text(max_size=50), st.sampled_from(HOSTILE)), variables, st.integers(0, 2**32 - 1))
def test_formulas_evaluate_within_budget_or_give_an_expression_error(text: str, x: torch.Tensor, seed: int) -> None:
    TRIED["formula"] += 1
    budget = 4096
    try:
        expression = parse_expression(text)
        result = expression.evaluate({"x": x}, numel_budget=budget, generator=torch.Generator().manual_seed(seed),
                                     dtype=torch.float64)  # fmt: skip
    except ParameditError as exc:
        rejected(exc, ExpressionError)
        if exc.position is not None:
            assert 0 <= exc.position <= len(text)
        return
    ACCEPTED["formula"] += 1
    assert isinstance(result, (torch.Tensor, int, float, bool)), type(result)
    if isinstance(result, torch.Tensor):
        assert result.numel() <= budget


# ---------------------------------------------------------------- values per dtype

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2,
          torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.uint16, torch.uint32, torch.uint64,
          torch.bool, torch.complex64]  # fmt: skip
number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["1,5", "1.000,5", "1 000", "0x10", "1_0", "١", "１", "+", "-", ".", "e5", "1e", "--1", "+-1",
                     "nan", "-NaN", "Infinity", "inf", "true", "False", "", " ", "\t", "1e999", "-1e999", "1e-999",
                     "4.9e-324", "3.4028235e38", "3.4028236e38", "65504", "65520", "448", "57344", "256", "-129",
                     "9223372036854775808", "18446744073709551616", "0.1", "2.5", "-0", "None", "[1]", "1+1j"]),
    st.text(alphabet=string.digits + ".,eE+- _xinfatINF\u00a0", max_size=12),
    st.text(max_size=20),
)  # fmt: skip
raw_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.complex_numbers(max_magnitude=10),
    st.sampled_from([np.float32(1.5), np.int8(-3), np.uint64(2**64 - 1), np.float16(np.inf), np.bool_(True),
                     np.array(2.0), np.array([1, 2]), torch.tensor(3), torch.tensor([1.0, 2.0]), b"1", [1], (),
                     object()]),
)


@settings(FUZZ, max_examples=600)
@given(number_text, st.sampled_from(DTYPES))
def test_typed_text_is_a_number_the_dtype_holds_or_a_value_error(text: str, dtype: torch.dtype) -> None:
    TRIED["typed text"] += 1
    try:
        value = check_scalar(parse_number(text), dtype)
    except ParameditError as exc:
        rejected(exc, ValueValidationError)
        return
    ACCEPTED["typed text"] += 1
    if isinstance(value, float):
        stored = torch.tensor(value, dtype=torch.float64).to(dtype).to(torch.float64)
        assert math.isfinite(value) == bool(torch.isfinite(stored)) or math.isnan(value), f"{text!r} into {dtype}"
    elif isinstance(value, bool):
        assert dtype == torch.bool or dtype.is_floating_point
    else:
        assert torch.tensor(value, dtype=dtype).item() == value, f"{text!r} into {dtype}"


@settings(FUZZ, max_examples=600)
@given(raw_values, st.sampled_from(DTYPES), st.lists(st.integers(0, 3), max_size=3).map(tuple))
def test_any_python_value_becomes_exact_shape_and_dtype_or_a_value_error(value, dtype, shape) -> None:
    TRIED["values"] += 1
    try:
        out = to_values(value, dtype, shape)
    except ParameditError as exc:
        rejected(exc, ValueValidationError)
        return
    ACCEPTED["values"] += 1
    assert out.dtype == dtype and tuple(out.shape) == shape and out.device.type == "cpu"


nested = st.recursive(
    st.one_of(st.floats(allow_subnormal=True), st.integers(-300, 300), st.booleans(), st.just("1")),
    lambda children: st.lists(children, max_size=3),
    max_leaves=12,
)


@settings(FUZZ, max_examples=300)
@given(nested, st.sampled_from(DTYPES), st.lists(st.integers(0, 3), max_size=3).map(tuple))
def test_nested_lists_ragged_or_not(value, dtype, shape) -> None:
    TRIED["nested lists"] += 1
    try:
        out = to_values(value, dtype, shape)
    except ParameditError as exc:
        rejected(exc, ValueValidationError)
        return
    ACCEPTED["nested lists"] += 1
    assert out.dtype == dtype and tuple(out.shape) == shape


# ---------------------------------------------------------------- TSV paste

cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True, width=32).map(repr),
    st.integers(-300, 70_000).map(str),
    st.integers(0, 1).map(str),
    st.sampled_from(["1,5", "", " ", "x", "nan", "TRUE", "1e40", "2.5", "-0", "１", "1\u00a0000", "\"1\""]),
)


@st.composite
def paste(draw) -> str:
    rows = draw(st.integers(1, 4))
    width = draw(st.integers(1, 4))
    lines = []
    for _ in range(rows):
        n = width if draw(st.integers(0, 5)) else draw(st.integers(0, 5))  # mostly rectangular, sometimes ragged
        lines.append(draw(st.sampled_from(["\t", "\t", "\t", ";", "  "])).join(draw(cell) for _ in range(n)))
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    return text + draw(st.sampled_from(["", "\n", "\r\n", "\n\n", "\t"]))


@settings(FUZZ, max_examples=400)
@given(st.one_of(paste(), st.text(max_size=30)), st.sampled_from(DTYPES),
       st.one_of(st.none(), st.lists(st.integers(0, 4), max_size=2).map(tuple)))  # fmt: skip
def test_paste_gives_the_region_shape_or_a_value_error(text: str, dtype: torch.dtype, shape) -> None:
    TRIED["paste"] += 1
    try:
        out = tsv_to_values(text, dtype, shape)
    except ParameditError as exc:
        rejected(exc, ValueValidationError)
        return
    ACCEPTED["paste"] += 1
    assert out.dtype == dtype
    if shape is not None:
        assert tuple(out.shape) == shape


# ---------------------------------------------------------------- commit: all or nothing


class Mixed(nn.Module):
    """Parameters and buffers of every kind of dtype a checkpoint holds."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w32 = nn.Parameter(torch.randn(3, 4, generator=g))
        self.w16 = nn.Parameter(torch.randn(4, generator=g).half())
        self.wbf = nn.Parameter(torch.randn(2, 3, generator=g).bfloat16())
        self.w64 = nn.Parameter(torch.randn(2, 2, 2, generator=g).double())
        self.register_buffer("i64", torch.arange(6).reshape(2, 3))
        self.register_buffer("i8", torch.tensor([-128, 0, 127], dtype=torch.int8))
        self.register_buffer("u8", torch.tensor([0, 255], dtype=torch.uint8))
        self.register_buffer("flag", torch.tensor([True, False]))
        self.register_buffer("f8", torch.tensor([0.5, -2.0, 448.0]).to(torch.float8_e4m3fn))
        self.register_buffer("scalar", torch.tensor(1.5))


TARGETS = ["w32", "w16", "wbf", "w64", "i64", "i8", "u8", "flag", "f8", "scalar", "nope", "w32.grad", ""]


@st.composite
def edits(draw) -> Edit | None:
    target = draw(st.sampled_from(TARGETS))
    index = draw(st.one_of(st.sampled_from(["[...]", "[0]", "[-1]", "[:, 1]", "[0, 0]", "[1:]", "[::2]", "[...]",
                                            "[9]", "[0, 0, 0, 0]", ""]), near_valid_region()))  # fmt: skip
    op = draw(st.sampled_from(["set", "set", "paste", "formula", "init"]))
    plain = st.one_of(st.integers(0, 1), st.floats(-100, 100), st.booleans())
    try:
        if op == "set":
            return Edit("set", target, index, value=draw(st.one_of(plain, plain, raw_values, nested)))
        if op == "paste":
            return Edit("set", target, index, value=draw(paste()))  # text: only valid once parsed
        if op == "formula":
            return Edit("formula", target, index, expr=draw(st.one_of(formula(6), st.sampled_from(HOSTILE))))
        method = draw(st.sampled_from(["zeros", "ones", "normal", "orthogonal", "eye", "arange", "bogus"]))
        args = draw(st.sampled_from([{}, {"std": 0.02}, {"std": -1}, {"value": 1e40}, {"gain": "x"}]))
        return Edit("init", target, index, method=method, args=args, seed=draw(st.integers(0, 2**31)))
    except ParameditError as exc:  # an edit can be malformed before it reaches a session
        rejected(exc, EditError)
        return None


@settings(FUZZ, max_examples=250)
@given(st.lists(edits(), min_size=1, max_size=3), st.data())
def test_a_random_commit_writes_everything_or_nothing(batch: list[Edit | None], data) -> None:
    TRIED["commits"] += 1
    assume(any(e is not None for e in batch))
    s = paramedit.open_session(Mixed())
    before = {n: bits(s.tensor(n)) for n in s.names()}
    staged = []
    for edit in batch:
        if edit is None:
            continue
        if edit.op == "set" and isinstance(edit.value, str):  # the GUI's paste path
            try:
                tensor = s.tensor(edit.target)
                region = parse_region(edit.index, tuple(tensor.shape))
                edit = Edit("set", edit.target, edit.index, value=tsv_to_values(edit.value, tensor.dtype, region.shape))
            except ParameditError as exc:
                rejected(exc)
                continue
        try:
            s.stage_edit(edit)
            staged.append(edit)
        except ParameditError as exc:
            rejected(exc)
    assert len(s.staged) == len(staged)
    previews = {e.target: s.preview(e.target) for e in staged}
    try:
        checks = s.commit()
    except ParameditError as exc:
        rejected(exc)
        assert {n: bits(s.tensor(n)) for n in s.names()} == before
        return
    ACCEPTED["commits"] += bool(staged)
    assert all(c.ok for c in checks)
    for name, (values, _mask) in previews.items():
        assert bits(s.tensor(name)) == bits(values.to(s.tensor(name).dtype)), name
    if staged:
        after = {n: bits(s.tensor(n)) for n in s.names()}
        s.undo()
        assert {n: bits(s.tensor(n)) for n in s.names()} == before
        s.redo()
        assert {n: bits(s.tensor(n)) for n in s.names()} == after
