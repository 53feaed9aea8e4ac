"""Where a scan finding lies in the 2-D slice that the table and the heatmap show.

Index arithmetic only, no Qt and no tensor values: a finding's ``position`` (a cell's indices,
or the row or column of a dead one) against the slice's row dim, column dim and fixed indices.
A dead row ``[777, :]`` pins dim 0 and a dead column ``[:, 5]`` pins dim 1, whatever the
tensor's rank (for a conv weight ``[2, :, :, :]`` is every value of output channel 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from paramedit.core.analysis.health_scan import Finding

__all__ = ["CELL_KINDS", "SliceMark", "SliceTarget", "finding_label", "marks_in_slice", "pinned_dims", "slice_target"]

CELL_KINDS = ("nan", "inf", "outlier")
_WORDS = {"nan": ("NaN", "NaN"), "inf": ("Inf", "Inf"), "outlier": ("outlier", "outliers"),
          "dead_row": ("dead row", "dead rows"), "dead_column": ("dead column", "dead columns"),
          "constant": ("constant tensor", "constant tensor")}  # fmt: skip


@dataclass(frozen=True)
class SliceTarget:
    """What to show for a finding: the fixed indices of the other dims, and the table row and
    column (None for "every one": a dead row is ``row=r, col=None``)."""

    fixed: dict[int, int]
    row: int | None
    col: int | None


@dataclass(frozen=True)
class SliceMark:
    """A finding as the heatmap draws it, in table coordinates (None: the whole line)."""

    kind: str
    severity: str
    row: int | None
    col: int | None
    count: int
    label: str
    in_slice: bool


def pinned_dims(finding: Finding, ndim: int) -> dict[int, int]:
    """Dim -> index that the finding fixes: every dim of a cell, dim 0 of a dead row, dim 1 of
    a dead column; nothing for a constant tensor."""
    pos = tuple(int(i) for i in finding.position)
    if finding.kind in CELL_KINDS and len(pos) == ndim:
        return dict(enumerate(pos))
    if finding.kind == "dead_row" and pos and ndim >= 1:
        return {0: pos[0]}
    if finding.kind == "dead_column" and pos and ndim >= 2:
        return {1: pos[0]}
    return {}


def slice_target(finding: Finding, ndim: int, row_dim: int, col_dim: int, fixed: Mapping[int, int]) -> SliceTarget:
    """The slice (fixed indices) and table cell that show ``finding``, keeping the rows and
    columns the user chose. ``row_dim``/``col_dim`` are -1 where there is none (1-D, 0-D)."""
    pins = pinned_dims(finding, ndim)
    new_fixed = dict(fixed)
    for d, i in pins.items():
        if d not in (row_dim, col_dim):
            new_fixed[d] = i
    row = pins.get(row_dim) if row_dim >= 0 else 0
    col = pins.get(col_dim) if col_dim >= 0 else 0
    if finding.kind in CELL_KINDS or finding.kind == "constant" or not pins:
        row, col = (0 if row is None else row), (0 if col is None else col)
    return SliceTarget(new_fixed, row, col)


def finding_label(finding: Finding) -> str:
    """``"1 NaN at [31337, 17]"``, ``"3 dead rows, first [777, :]"``, ``"1 outlier at [100, 517] = 1e+04"``."""
    one, many = _WORDS.get(finding.kind, (finding.kind, finding.kind))
    if finding.kind == "constant":
        return f"constant: every value is {finding.value:.6g}" if finding.value is not None else "constant"
    where = f"at {finding.index}" if finding.count == 1 else f"first {finding.index}"
    value = f" = {finding.value:.4g}" if finding.kind in ("outlier", "inf") and finding.value is not None else ""
    return f"{finding.count} {one if finding.count == 1 else many}{',' if finding.count > 1 else ''} {where}{value}"


def marks_in_slice(findings: Iterable[Finding], ndim: int, row_dim: int, col_dim: int,
                   fixed: Mapping[int, int]) -> list[SliceMark]:
    """Every finding of one tensor as a mark on the shown slice (``in_slice`` False, and no
    place, when it lies in another slice of an N-D tensor)."""
    marks = []
    for f in findings:
        pins = pinned_dims(f, ndim)
        inside = all(fixed.get(d) == i for d, i in pins.items() if d not in (row_dim, col_dim))
        if f.kind == "constant" or not pins:
            marks.append(SliceMark(f.kind, f.severity, None, None, f.count, finding_label(f), inside))
            continue
        row = pins.get(row_dim) if row_dim >= 0 else 0
        col = pins.get(col_dim) if col_dim >= 0 else 0
        label = finding_label(f) + ("" if inside else " (in another slice)")
        marks.append(SliceMark(f.kind, f.severity, row if inside else None, col if inside else None, f.count,
                               label, inside))
    return marks
