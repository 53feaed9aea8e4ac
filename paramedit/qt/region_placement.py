"""Where a region of a tensor lies in the 2-D slice that the table shows, and back.

Index arithmetic only, no Qt and no tensor values. The table shows one 2-D slice: a row dim and
a column dim (each possibly a window of its dim, as the head view shows one head's columns) with
every other dim fixed at one index. A region (core's parsed :class:`Region` index: ints and
slices) may span dims the slice fixes, as output channel ``[2, :, :, :]`` of a conv weight
spans every input channel: it is then placed on one slice that holds part of it, and the dims
it spans that the slice cannot show at once are named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["MAX_SPANS", "Placement", "SliceView", "blocks_overlap", "merge_blocks", "place_region"]

Span = tuple[int, int]  # half-open
Block = tuple[Span, Span]  # (rows, cols) of the table
#: Most separate row (or column) spans a strided region is selected as; beyond, its bounding span.
MAX_SPANS = 256


@dataclass(frozen=True)
class SliceView:
    """What the table shows: row and column dims (None: none, for 0-D and 1-D tensors), the fixed
    index of every other dim, and the window of the row and column dims (None: all of it)."""

    shape: tuple[int, ...]
    row_dim: int | None
    col_dim: int | None
    fixed: Mapping[int, int]
    row_window: Span | None = None
    col_window: Span | None = None


@dataclass
class Placement:
    """A region on the slice: the fixed indices to show it on, its table blocks there, and what
    of it the slice cannot show (``spans``: "dim 1 (all 3)")."""

    fixed: dict[int, int]
    blocks: list[Block] = field(default_factory=list)
    spans: list[str] = field(default_factory=list)
    outside: bool = False  # no part of it is in the (windowed) slice
    bounded: bool = False  # a strided region shown as the span around it


def _spans(entry: int | slice, window: Span | None, size: int) -> tuple[list[Span], bool]:
    """Table spans of one index entry along a shown dim (offset by its window's start)."""
    lo, hi = window if window is not None else (0, size)
    if isinstance(entry, int):
        spans = [(entry, entry + 1)]
    else:
        start, stop, step = entry.start or 0, size if entry.stop is None else entry.stop, entry.step or 1
        if step == 1:
            spans = [(start, stop)]
        else:
            points = range(start, stop, step)
            if len(points) > MAX_SPANS:
                return [(max(points[0], lo) - lo, min(points[-1] + 1, hi) - lo)], True
            spans = [(p, p + 1) for p in points]
    clipped = [(max(a, lo) - lo, min(b, hi) - lo) for a, b in spans if min(b, hi) > max(a, lo)]
    return clipped, False


def place_region(index: tuple, view: SliceView, *, move: bool = True) -> Placement:
    """Place a region (one int or slice per dim, as core parses it) on the shown slice.

    With ``move`` the fixed dims go to the region's index (an int) or, for a dim it spans, stay
    where they are when inside it, else go to its first index; without, a region that misses
    the shown slice is ``outside``.
    """
    place = Placement(fixed={})
    rows: list[Span] = [(0, 1)]
    cols: list[Span] = [(0, 1)]
    for d, entry in enumerate(index):
        size = view.shape[d]
        if d == view.row_dim:
            rows, bounded = _spans(entry, view.row_window, size)
            place.bounded |= bounded
            continue
        if d == view.col_dim:
            cols, bounded = _spans(entry, view.col_window, size)
            place.bounded |= bounded
            continue
        current = view.fixed.get(d, 0)
        if isinstance(entry, int):
            wanted = entry
        else:
            points = range(entry.start or 0, size if entry.stop is None else entry.stop, entry.step or 1)
            wanted = current if current in points else (points[0] if len(points) else current)
            if len(points) > 1:
                place.spans.append(f"dim {d} ({'all ' if len(points) == size else ''}{len(points)})")
        if wanted != current:
            if not move:
                place.outside = True
                return place
            place.fixed[d] = wanted
    place.blocks = [(r, c) for r in rows for c in cols]
    place.outside = not place.blocks
    return place


def merge_blocks(blocks: Iterable[Block]) -> list[Block]:
    """Table blocks as few rectangles as they make: side by side with the same rows, then one
    above the other with the same columns (Qt splits a selection into ranges freely)."""
    items = sorted(set(blocks), key=lambda b: (b[0], b[1]))
    merged: list[Block] = []
    for rows, cols in items:
        if merged and merged[-1][0] == rows and merged[-1][1][1] == cols[0]:
            merged[-1] = (rows, (merged[-1][1][0], cols[1]))
        else:
            merged.append((rows, cols))
    merged.sort(key=lambda b: (b[1], b[0]))
    out: list[Block] = []
    for rows, cols in merged:
        if out and out[-1][1] == cols and out[-1][0][1] == rows[0]:
            out[-1] = ((out[-1][0][0], rows[1]), cols)
        else:
            out.append((rows, cols))
    return sorted(out)


def blocks_overlap(blocks: list[Block]) -> bool:
    """Whether two of the blocks share a cell."""
    for i, (ra, ca) in enumerate(blocks):
        for rb, cb in blocks[i + 1:]:
            if ra[0] < rb[1] and rb[0] < ra[1] and ca[0] < cb[1] and cb[0] < ca[1]:
                return True
    return False
