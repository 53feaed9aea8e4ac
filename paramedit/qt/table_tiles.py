"""The table's cache pieces: a tile of cells (values, staged and edited marks, the reference's
values, formatted texts), block formatting, and the colours of "colour by value"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PySide6.QtGui import QBrush, QColor

from paramedit.qt.number_format import NumberFormat, compact_text, edit_text, format_number

__all__ = ["Tile", "compare_text", "diverging_brushes", "format_block", "to_numpy"]

_DIVERGING = [QColor("#4a7bd0"), QColor("#ffffff"), QColor("#d0504a")]


def diverging_brushes(steps: int = 64) -> list[QBrush]:
    """Blue-white-red, pale enough that black text stays readable on every step."""
    out = []
    for i in range(-steps, steps + 1):
        t = i / steps
        lo, hi = (_DIVERGING[1], _DIVERGING[2]) if t >= 0 else (_DIVERGING[1], _DIVERGING[0])
        a = abs(t) * 0.75
        out.append(QBrush(QColor.fromRgbF(
            lo.redF() + (hi.redF() - lo.redF()) * a,
            lo.greenF() + (hi.greenF() - lo.greenF()) * a,
            lo.blueF() + (hi.blueF() - lo.blueF()) * a,
        )))
    return out


@dataclass
class Tile:
    """One cached block of the table's cells."""

    values: np.ndarray  # float64 / int64 / bool, (rows, cols) of the table
    staged: np.ndarray  # bool
    edited: np.ndarray | None  # bool: differs from the checkpoint (only when asked for)
    ref: np.ndarray | None = None  # the reference checkpoint's values (A) while comparing
    any_staged: bool = False
    texts: np.ndarray | None = None  # object array of display texts, valid where has_text
    has_text: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.any_staged = bool(self.staged.any())
        self.forget_texts()

    def forget_texts(self) -> None:
        self.texts = np.empty(self.values.shape, dtype=object)
        self.has_text = np.zeros(self.values.shape, dtype=bool)


def format_block(values: np.ndarray, dtype: torch.dtype, style: NumberFormat, decimals: int) -> np.ndarray:
    """:func:`format_number` over a block, cell for cell the same text, as an object array.

    One NumPy or list pass per block instead of one Python call per cell: float32 in the stored
    style (NumPy's shortest round-trip text) is NumPy's own string cast.
    """
    flat = values.reshape(-1)
    if dtype.is_floating_point and style is NumberFormat.STORED and dtype == torch.float32:
        texts = flat.astype(np.float32).astype(str).astype(object)
    else:
        if dtype == torch.bool:
            fmt: Any = {True: "true", False: "false"}.__getitem__
        elif dtype.is_complex:
            fmt = lambda v: format_number(v, dtype, style, decimals)  # noqa: E731
        elif not dtype.is_floating_point:
            fmt = str
        else:
            fmt = {NumberFormat.GENERAL: "{:.6g}".format, NumberFormat.FIXED: f"{{:.{decimals}f}}".format,
                   NumberFormat.SCIENTIFIC: f"{{:.{decimals}e}}".format,
                   NumberFormat.COMPACT: compact_text}.get(style, repr)
        texts = np.fromiter((fmt(v) for v in flat.tolist()), dtype=object, count=flat.size)
    if dtype.is_floating_point:
        bad = ~np.isfinite(flat)
        if bad.any():  # nan, inf, -inf exactly as format_number spells them
            texts[bad] = [format_number(v, dtype, style, decimals) for v in flat[bad].tolist()]
    return texts.reshape(values.shape)


def compare_text(a: Any, b: Any, dtype: torch.dtype) -> str:
    """``"A → B (Δ d)"`` for one cell: A's and B's exact values and B − A (0 for equal values,
    NaN on both sides included)."""
    same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    if isinstance(a, (bool, np.bool_)) or dtype.is_complex:
        delta = "same" if same else "changed"
    else:
        d = 0.0 if same else float(b) - float(a)
        delta = f"Δ {d:+.6g}" if d else "Δ 0"
    return f"{edit_text(a, dtype)} → {edit_text(b, dtype)} ({delta})"


def to_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bool:
        return t.numpy()
    if t.is_complex():  # read-only in paramedit, but still shown
        return t.to(torch.complex128).numpy()
    if t.is_floating_point():
        return t.to(torch.float64).numpy()
    return t.to(torch.int64).numpy()
