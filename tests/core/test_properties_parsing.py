"""Property tests for the parsers: regions agree with NumPy, and no text can crash a parser."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paramedit.core.editing.expressions import parse_expression
from paramedit.core.editing.regions import format_region, parse_region
from paramedit.core.editing.values import format_tsv, parse_number, parse_tsv, tsv_to_values
from paramedit.core.errors import ExpressionError, ParameditError

shapes = st.lists(st.integers(0, 6), max_size=4).map(tuple)
bounds = st.one_of(st.none(), st.integers(-9, 9))


def entry_for(draw, size: int):
    if size > 0 and draw(st.booleans()):
        return draw(st.integers(-size, size - 1))
    return slice(draw(bounds), draw(bounds), draw(st.one_of(st.none(), st.integers(1, 4))))


@st.composite
def shape_and_index(draw):
    """A shape and a NumPy basic index for it: in-range ints, slices with step >= 1, maybe '...'."""
    shape = draw(shapes)
    k = draw(st.integers(0, len(shape)))  # explicit entries
    if not draw(st.booleans()):
        return shape, tuple(entry_for(draw, size) for size in shape[:k])
    at = draw(st.integers(0, k))  # entries before the ellipsis index leading dims, after it trailing
    before = [entry_for(draw, size) for size in shape[:at]]
    after = [entry_for(draw, size) for size in shape[len(shape) - (k - at) :]] if k > at else []
    return shape, (*before, Ellipsis, *after)


def spell(entries: tuple, data) -> str:
    """Write an index tuple as text, with random spacing and optional brackets."""
    space = lambda: data.draw(st.sampled_from(["", " ", "  ", "\t"]))  # noqa: E731

    def part(entry) -> str:
        if entry is Ellipsis:
            return "..."
        if isinstance(entry, int):
            return str(entry)
        text = f"{'' if entry.start is None else entry.start}{space()}:{space()}{'' if entry.stop is None else entry.stop}"
        return text + ("" if entry.step is None else f":{entry.step}")

    body = ("," + space()).join(space() + part(e) + space() for e in entries)
    return f"[{body}]" if not entries or data.draw(st.booleans()) else body


@settings(max_examples=400, deadline=None)
@given(shape_and_index(), st.data())
def test_parsed_region_selects_what_numpy_selects(case, data):
    shape, index = case
    text = spell(index, data)
    region = parse_region(text, shape)
    reference = np.arange(math.prod(shape)).reshape(shape)[index]
    tensor = torch.arange(math.prod(shape)).reshape(shape)
    view = tensor[region.index]
    assert region.shape == reference.shape
    np.testing.assert_array_equal(view.numpy(), reference)
    np.testing.assert_array_equal(region.flat_positions().numpy(), reference)
    assert view.numel() == 0 or view.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr()
    # The canonical text is a fixed point and formats back from the index.
    assert parse_region(region.text, shape) == region
    assert format_region(region.index, shape=shape) == region.text
    # format_region of the raw index spells the same selection.
    assert parse_region(format_region(index), shape) == region


parser_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789[](),:.+-*/%@&|<>=!~ \t\nxeinfa_.'\"", max_size=60),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parser_text, shapes)
def test_parse_region_raises_only_region_errors(text, shape):
    try:
        region = parse_region(text, shape)
    except ParameditError:
        return
    assert len(region.index) == len(shape)


@settings(max_examples=300, deadline=None)
@given(parser_text)
def test_parse_expression_raises_only_expression_errors(text):
    try:
        expression = parse_expression(text)
    except ExpressionError as exc:
        assert exc.position is None or 0 <= exc.position <= len(text)
        return
    # Whatever parses also evaluates safely under a small budget, or says why not.
    try:
        expression.evaluate({"x": torch.arange(6.0).reshape(2, 3)}, numel_budget=10_000)
    except ExpressionError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.text(alphabet="0123456789.,eE+-_ xinfatrueINFNA\t", max_size=20)))
def test_parse_number_raises_only_value_errors(text):
    try:
        value = parse_number(text)
    except ParameditError:
        return
    assert isinstance(value, (int, float, bool))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["1", "2.5", "\t", "\n", "\r\n", "\r", "x", " ", ""]), max_size=40).map("".join))
def test_parse_tsv_raises_only_value_errors(text):
    try:
        rows = parse_tsv(text)
    except ParameditError:
        return
    assert rows and len({len(row) for row in rows}) == 1


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_parse_tsv_arbitrary_text(text):
    try:
        parse_tsv(text)
        tsv_to_values(text, torch.float32)
    except ParameditError:
        pass


float32s = st.floats(width=32, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.lists(float32s, min_size=1, max_size=8), st.lists(st.lists(float32s, min_size=3, max_size=3), min_size=1, max_size=5)))
def test_format_tsv_roundtrips_float32_exactly(values):
    tensor = torch.tensor(values, dtype=torch.float32)
    back = tsv_to_values(format_tsv(tensor), torch.float32, tensor.shape)
    assert torch.equal(back.view(torch.int32), tensor.view(torch.int32))
