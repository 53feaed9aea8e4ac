"""Regions: NumPy-style basic index strings such as ``[0, :]`` or ``[2:5, ::2]``.

Only basic indexing (ints, slices with a positive step, one ellipsis) is accepted, because
``tensor[index]`` is then always a *view*: ``copy_`` into it writes the parameter in place.
Advanced indexing (lists, arrays, masks) would silently produce a copy, so it is refused.

The text is parsed with :func:`ast.parse` and walked against a whitelist; it is never
evaluated.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from paramedit.core.errors import RegionError

__all__ = ["MAX_REGION_TEXT", "Region", "format_region", "parse_region"]

#: Longer index strings are refused before parsing, so no input can make the parser work hard.
MAX_REGION_TEXT = 1000
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Region:
    """A parsed region of a tensor of shape ``tensor_shape``.

    ``index`` has exactly one entry per dimension: a non-negative ``int`` or a ``slice`` with
    non-negative ``start``/``stop`` and ``step >= 1``, so ``tensor[region.index]`` is a view.
    """

    text: str
    # Slices are unhashable before Python 3.12; ``text`` + ``tensor_shape`` determine the index.
    index: tuple = field(hash=False)
    shape: tuple[int, ...]
    tensor_shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        """Number of elements in the region."""
        return math.prod(self.shape)

    @property
    def is_whole(self) -> bool:
        """Whether the region is the whole tensor."""
        return self.text == "[...]"

    def flat_positions(self) -> torch.Tensor:
        """Row-major flat position in the full tensor of each region element (int64, ``self.shape``).

        Built from one ``arange`` per sliced dimension added with broadcasting, so it costs
        O(region numel), never O(tensor numel).
        """
        strides = [math.prod(self.tensor_shape[d + 1 :]) for d in range(len(self.tensor_shape))]
        offset = 0
        parts: list[torch.Tensor] = []
        for part, stride in zip(self.index, strides, strict=True):
            if isinstance(part, slice):
                parts.append(torch.arange(part.start, part.stop, part.step, dtype=torch.int64) * stride)
            else:
                offset += part * stride
        result = torch.full((), offset, dtype=torch.int64)
        for k, positions in enumerate(parts):
            view = [1] * len(parts)
            view[k] = -1
            result = result + positions.view(view)
        return result.reshape(self.shape)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise RegionError(f"invalid tensor shape {shape!r}: dimensions must be integers") from None
    if any(d < 0 for d in dims):
        raise RegionError(f"invalid tensor shape {shape!r}: dimensions must be non-negative")
    return dims


def _int_value(node: ast.expr, fail) -> int:
    """An integer literal with optional unary signs; anything else is explained and refused."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            fail(f"{value} is not an index (boolean masks would copy, not view)")
        if isinstance(value, int):
            if abs(value) > _INT64_MAX:
                fail(f"integer {sign * value} is too large")
            return sign * value
        if isinstance(value, float):
            fail(f"{value!r} is not an integer; indices must be whole numbers")
        if value is None:
            fail("None/newaxis is not supported (it would add a dimension)")
        if value is Ellipsis:
            fail("'...' cannot be used inside a slice")
        fail(f"{value!r} is not an index")
    if isinstance(node, ast.Name):
        fail(f"names such as {node.id!r} are not allowed; use integers")
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        fail("lists of indices are advanced indexing, which would copy instead of view; use a slice")
    fail("only integers, slices (start:stop:step) and '...' are allowed")
    raise AssertionError  # unreachable: fail() raises


def _entries(text: str, fail) -> list:
    """Parse the text into a list of int / (start, stop, step) / Ellipsis entries."""
    inner = text.strip()
    if inner.startswith("[") != inner.endswith("]"):
        fail("unbalanced brackets")
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    if not inner.strip():
        return []
    try:
        # Ignore SyntaxWarnings about escapes etc.: we only read the tree.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(f"_[{inner}]", mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        fail("not a valid index (expected e.g. '[0, :]', '[2:5, 1]', '[:, ::2]' or '[...]')")
    body = tree.body
    if not (isinstance(body, ast.Subscript) and isinstance(body.value, ast.Name) and body.value.id == "_"):
        fail("unbalanced brackets or text outside the index")
    items = body.slice.elts if isinstance(body.slice, ast.Tuple) else [body.slice]
    entries: list = []
    for item in items:
        if isinstance(item, ast.Constant) and item.value is Ellipsis:
            if Ellipsis in entries:
                fail("an index can only have one ellipsis ('...')")
            entries.append(Ellipsis)
        elif isinstance(item, ast.Slice):
            start = None if item.lower is None else _int_value(item.lower, fail)
            stop = None if item.upper is None else _int_value(item.upper, fail)
            step = None if item.step is None else _int_value(item.step, fail)
            if step is not None and step <= 0:
                fail(f"slice step must be at least 1, got {step} (torch cannot view reversed or zero steps)")
            entries.append((start, stop, step))
        else:
            entries.append(_int_value(item, fail))
    return entries


def parse_region(text: str, shape: Sequence[int]) -> Region:
    """Parse a NumPy basic-index string for a tensor of ``shape``; raise :class:`RegionError`.

    Accepts ``[...]``, ``...``, ``""``, ``[]``, ``[0, :]``, ``[2:5, 1]``, ``[:, ::2]``,
    ``[-1]``, ``[1, ..., 2]``, brackets optional, whitespace anywhere. Slice bounds clamp like
    NumPy; integer indices must be in range.
    """
    dims = _check_shape(shape)
    if not isinstance(text, str):
        raise RegionError(f"a region must be text, got {type(text).__name__}")
    shown = text if len(text) <= 60 else text[:57] + "..."

    def fail(reason: str):
        raise RegionError(f"region {shown!r} for a tensor of shape {_shape_text(dims)}: {reason}")

    if len(text) > MAX_REGION_TEXT:
        fail(f"text is longer than {MAX_REGION_TEXT} characters")
    entries = _entries(text, fail)
    n_given = sum(1 for e in entries if e is not Ellipsis)
    if n_given > len(dims):
        fail(f"too many indices: {n_given} given, the tensor has {len(dims)} dimension(s)")
    if Ellipsis in entries:
        at = entries.index(Ellipsis)
        full = [(None, None, None)] * (len(dims) - n_given)
        entries = entries[:at] + full + entries[at + 1 :]
    entries += [(None, None, None)] * (len(dims) - len(entries))
    index: list = []
    out_shape: list[int] = []
    for d, (entry, size) in enumerate(zip(entries, dims, strict=True)):
        if isinstance(entry, int):
            position = entry + size if entry < 0 else entry
            if not 0 <= position < size:
                fail(f"index {entry} is out of range for dim {d} of size {size}")
            index.append(position)
        else:
            start, stop, step = slice(*entry).indices(size)
            count = len(range(start, stop, step))
            # Canonical form: stop just past the last element, so equal selections compare equal.
            if count:
                index.append(slice(start, start + (count - 1) * step + 1, step))
            else:
                index.append(slice(min(start, size), min(start, size), 1))
            out_shape.append(count)
    index_t = tuple(index)
    return Region(format_region(index_t, shape=dims), index_t, tuple(out_shape), dims)


def _format_slice(part: slice, size: int | None) -> str:
    start, stop, step = part.start, part.stop, 1 if part.step is None else part.step
    step_text = "" if step == 1 else f":{step}"
    if size is not None and None not in (start, stop) and min(start, stop) >= 0:
        count = len(range(start, min(stop, size), step))
        if size == 0:
            return ":"
        if count and start == 0 and start + count * step >= size:
            return ":" + step_text if step_text else ":"
        if count and start + count * step >= size:
            return f"{start}:{step_text}"
    first = "" if start is None else str(start)
    last = "" if stop is None else str(stop)
    return f"{first}:{last}{step_text}"


def format_region(index: tuple, *, shape: Sequence[int] | None = None) -> str:
    """Canonical text of a basic index tuple (ints, slices with step >= 1, at most one ``...``).

    Without ``shape`` every entry is written as given (``slice(0, 3)`` -> ``0:3``). With the
    tensor's ``shape``, slices that reach the end of their dimension drop their stop, a whole
    dimension is ``:``, and an index that selects the whole tensor is ``[...]``.
    """
    if not isinstance(index, tuple):
        index = (index,)
    dims = None if shape is None else _check_shape(shape)
    parts: list[str] = []
    seen_ellipsis = False
    for d, part in enumerate(index):
        size = dims[d] if dims is not None and d < len(dims) and not seen_ellipsis else None
        if part is Ellipsis:
            if seen_ellipsis:
                raise RegionError("an index can only have one ellipsis ('...')")
            seen_ellipsis = True
            parts.append("...")
        elif isinstance(part, slice):
            for bound in (part.start, part.stop, part.step):
                if bound is not None and (isinstance(bound, bool) or not _is_int(bound)):
                    raise RegionError(f"slice bounds must be integers, got {part!r}")
            if part.step is not None and operator.index(part.step) <= 0:
                raise RegionError(f"slice step must be at least 1, got {part.step}")
            norm = slice(*(None if b is None else operator.index(b) for b in (part.start, part.stop, part.step)))
            parts.append(_format_slice(norm, size))
        elif _is_int(part) and not isinstance(part, bool):
            parts.append(str(operator.index(part)))
        else:
            raise RegionError(f"{part!r} is not a basic index (only ints, slices and '...')")
    if not parts or parts == ["..."] or (dims is not None and all(p in (":", "...") for p in parts)):
        return "[...]"
    return "[" + ", ".join(parts) + "]"


def _is_int(value) -> bool:
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def parse_regions(text: str, shape: Sequence[int]) -> list[Region]:
    """Several regions separated by ``;`` (``[:, 128:192]; [:, 384:448]``), each parsed as
    :func:`parse_region`; an error names which one is wrong."""
    parts = [p.strip() for p in text.split(";") if p.strip()]
    if not parts:
        raise RegionError("no region given: write one such as [0, :] (several separated by ;)")
    regions = []
    for i, part in enumerate(parts, 1):
        try:
            regions.append(parse_region(part, shape))
        except RegionError as exc:
            if len(parts) == 1:
                raise
            raise RegionError(f"region {i} of {len(parts)} ({part}): {exc.message}") from exc
    return regions
