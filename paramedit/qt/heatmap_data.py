"""NumPy side of the heatmap: display arrays, block reduction, value summaries, colour levels.

No Qt here, so each piece can be tested and timed on its own.  Everything costs what the array
handed in costs: the editor hands over a strided sample about the size of the screen, never a
whole large tensor (see :func:`sampling_steps`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from paramedit.qt.heatmap_reduce import SAMPLE

__all__ = [
    "DIVERGING",
    "MAX_DISPLAY",
    "MAX_SAMPLE",
    "MAX_STAT_SAMPLES",
    "SEQUENTIAL",
    "ValueSummary",
    "bin_colours",
    "compute_levels",
    "difference",
    "finite_display",
    "format_value",
    "histogram",
    "histogram_image",
    "nice_rounding",
    "nonfinite_positions",
    "nonfinite_text",
    "ordinal",
    "sampling_steps",
    "stats_text",
    "summarize",
    "to_display_array",
]

#: Largest number of displayed pixels along one axis; bigger inputs are block-reduced first.
MAX_DISPLAY = 2048
#: Most samples along one axis that the editor asks core for (a screen is narrower than this).
MAX_SAMPLE = 1024
#: Levels and the histogram use at most this many finite values (an even stride through them):
#: the 99.5th percentile of 16384 values still has ~80 values above it, plenty for a colour scale.
MAX_STAT_SAMPLES = 1 << 14
DIVERGING = "diverging (centred on 0)"
SEQUENTIAL = "sequential"
NAN_RGBA = (255, 0, 255, 255)  # magenta: in neither colour map
HIST_BINS = 64
HIST_HEIGHT = 64  # rows of the histogram's bar image (the plot is about that many pixels tall)


def to_display_array(values: Any) -> np.ndarray:
    """Return ``values`` (tensor or array, any dtype, 0-D/1-D/2-D) as a 2-D NumPy array.

    The dtype is kept where NumPy has it (so hover shows exact integers); bfloat16 and float8
    become float32, complex becomes its magnitude.
    """
    if isinstance(values, torch.Tensor):
        t = values.detach().cpu().resolve_conj().resolve_neg()
        if t.is_complex():
            t = t.abs()
        if t.dtype == torch.bfloat16 or "float8" in str(t.dtype):
            t = t.float()
        arr = t.numpy()
    else:
        arr = np.asarray(values)
        arr = np.abs(arr) if np.iscomplexobj(arr) else arr
    if arr.ndim > 2:
        raise ValueError(f"HeatmapView shows 2-D data; got shape {tuple(arr.shape)}")
    return arr.reshape(1, -1) if arr.ndim < 2 else arr


def sampling_steps(shape: tuple[int, int], limits: tuple[int, int]) -> tuple[int, int]:
    """Row and column steps that keep a strided sample of ``shape`` within ``limits``."""
    (rows, cols), (max_rows, max_cols) = shape, limits
    return max(1, -(-rows // max(1, max_rows))), max(1, -(-cols // max(1, max_cols)))


def ordinal(k: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``11th``, ``126th``."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


@dataclass(frozen=True)
class ValueSummary:
    """What the levels, the histogram and the stats label need from a float32 array."""

    finite_sample: np.ndarray  # at most MAX_STAT_SAMPLES finite values, an even stride through them
    extremes: tuple[float, float] | None  # exact finite (min, max); None when nothing is finite
    n_nan: int
    n_inf: int


def summarize(data: np.ndarray) -> ValueSummary:
    """One pass for the NaN/Inf counts and the extremes, then an even sample of the finite values."""
    finite_mask = np.isfinite(data)
    n_bad = data.size - int(np.count_nonzero(finite_mask))
    finite = data[finite_mask] if n_bad else data.reshape(-1)
    n_nan = int(np.isnan(data).sum()) if n_bad else 0
    extremes = (float(finite.min()), float(finite.max())) if finite.size else None
    sample = finite[:: -(-finite.size // MAX_STAT_SAMPLES)] if finite.size else finite
    return ValueSummary(sample, extremes, n_nan, n_bad - n_nan)


def _percentiles(values: np.ndarray, qs: list[float]) -> list[float]:
    """``np.percentile(values, qs)`` (its default linear interpolation) from one partial sort,
    without NumPy's general-purpose overhead, which dominates on a sample this small."""
    n = values.size
    pos = [q / 100.0 * (n - 1) for q in qs]
    lows = [math.floor(p) for p in pos]
    kth = sorted({k for lo in lows for k in (lo, min(lo + 1, n - 1))})
    part = np.partition(values, kth)
    one = part.dtype.type(1)  # interpolate in the array's own precision, as NumPy does
    out = []
    for p, lo in zip(pos, lows, strict=True):
        a, b, t = part[lo], part[min(lo + 1, n - 1)], part.dtype.type(p - lo)
        out.append(float(a + (b - a) * t if t < 0.5 else b - (b - a) * (one - t)))  # NumPy's _lerp
    return out


def compute_levels(
    finite: np.ndarray,
    mode: str,
    clip: bool,
    percentile: float = 99.5,
    extremes: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Colour levels for finite values: symmetric ``(-m, m)`` or ``(lo, hi)``, never empty.

    ``finite`` may be a sample for the percentiles; ``extremes`` is then the exact (min, max).
    """
    if finite.size == 0:
        return (-1.0, 1.0) if mode == DIVERGING else (0.0, 1.0)
    lo, hi = extremes if extremes is not None else (float(finite.min()), float(finite.max()))
    if mode == DIVERGING:
        top = max(abs(lo), abs(hi))
        m = _percentiles(np.abs(finite), [percentile])[0] if clip else top
        if not m > 0:
            m = top if top > 0 else 1.0
        return (-m, m)
    if clip:
        tail = (100.0 - percentile) / 2.0
        plo, phi = _percentiles(finite, [tail, 100.0 - tail])
        if phi > plo:
            lo, hi = plo, phi
    if not hi > lo:  # constant data: centre its colour
        half = abs(lo) * 0.5 if lo != 0 else 1.0
        lo, hi = lo - half, hi + half
    return (lo, hi)


def finite_display(
    display: np.ndarray, summary: ValueSummary, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """What pyqtgraph gets: only finite values (NaN at ``lo``, +/-Inf beyond the level ends),
    plus an RGBA overlay painting NaN magenta (None when there is no NaN)."""
    if not (summary.n_nan or summary.n_inf):
        return display, None  # the common case: no copy
    fmin, fmax = summary.extremes or (lo, hi)
    shown = np.nan_to_num(display, nan=lo, posinf=max(hi, fmax), neginf=min(lo, fmin))
    if not summary.n_nan:
        return shown, None
    overlay = np.zeros((*display.shape, 4), np.uint8)
    overlay[np.isnan(display)] = NAN_RGBA  # block reduction keeps every NaN visible
    return shown, overlay


def histogram(sample: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Counts of ``HIST_BINS`` equal bins over ``[lo, hi]``; the end bins include clipped values."""
    with np.errstate(invalid="ignore", over="ignore"):  # spans near the float64 limit
        scaled = (sample.astype(np.float64) - lo) * (HIST_BINS / (hi - lo))
    # ``sample`` is finite and ``hi > lo``: every value lands in a bin once clipped.
    return np.bincount(np.clip(scaled, 0, HIST_BINS - 1).astype(np.intp), minlength=HIST_BINS)


def bin_colours(cmap: Any) -> np.ndarray:
    """(HIST_BINS, 4) RGBA bytes: the colour map at each bin's centre.

    ``cmap`` is a ``pyqtgraph.ColorMap`` (anything with ``map(positions, mode="byte")``).
    """
    return np.asarray(cmap.map((np.arange(HIST_BINS) + 0.5) / HIST_BINS, mode="byte"), dtype=np.uint8)


def histogram_image(counts: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """RGBA bars (row 0 at the bottom), each bin in its colour from :func:`bin_colours`."""
    heights = np.ceil(counts * (HIST_HEIGHT / max(int(counts.max()), 1))).astype(np.intp)
    filled = np.arange(HIST_HEIGHT)[:, None] < heights[None, :]
    return np.where(filled[..., None], colours[None, :, :], np.uint8(0))


def stats_text(summary: ValueSummary, full_shape: tuple[int, int], factor: tuple[int, int],
               stride: tuple[int, int], reduction: str = SAMPLE) -> tuple[str, str]:
    """The stats line under the heatmap and its tooltip: the block's size, how it was thinned
    (which reduction is on), and min and max. NaN and Inf counts are not here: they have a line
    of their own that is never cut (:func:`nonfinite_text`)."""
    (fr, fc), (rs, cs) = factor, stride
    sampled = (rs, cs) != (1, 1)
    parts = ["{}×{}".format(*full_shape)]
    if sampled:
        # Short: the line sits under a narrow plot; the tooltip says it in full.
        parts.append("sample " + ", ".join(f"1/{k} {axis}" for k, axis in ((rs, "rows"), (cs, "cols")) if k > 1))
    if (fr, fc) != (1, 1):
        parts.append(f"{'max |v|' if reduction == SAMPLE else reduction} of {fr}×{fc}")
    elif not sampled:
        parts.append("every value")
    if summary.extremes is not None:
        parts += [f"min {summary.extremes[0]:.4g}", f"max {summary.extremes[1]:.4g}"]
    text = " · ".join(parts)
    notes = [text]
    if sampled:
        notes.append(f"sampled: the heatmap draws every {ordinal(rs)} row and every {ordinal(cs)} column of the "
                     "block; values between samples are not drawn, and levels, histogram, min and max come from "
                     "the samples. Choose mean, max |v| or min |v| to read every value. Whatever is drawn, the "
                     "scan's findings are marked.")
    if (fr, fc) != (1, 1):
        how = "max |v|" if reduction == SAMPLE else reduction
        notes.append(f"each pixel shows the {how} of its {fr}×{fc} block"
                     + {"max |v|": " (an outlier shows)", "min |v|": " (a zero row or column shows)"}.get(how, ""))
    return text, "\n".join(notes)


def nonfinite_text(summary: ValueSummary) -> str:
    """``"2 NaN (magenta) · 1 ±Inf shown"``, or "" when the shown values are all finite."""
    parts = [f"{summary.n_nan} NaN (magenta)"] * bool(summary.n_nan) + [f"{summary.n_inf} ±Inf"] * bool(summary.n_inf)
    return " · ".join(parts) + " shown" if parts else ""


def nice_rounding(lo: float, hi: float) -> float:
    """A power of ten about 1/1000 of the level span, for the colour bar's ``rounding``."""
    span = hi - lo
    if not (span > 0 and math.isfinite(span)):
        return 1e-6
    return 10.0 ** (math.floor(math.log10(span)) - 3)


def format_value(value: Any) -> str:
    """Short readable text for one element: exact ints/bools, 6 significant digits for floats."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.6g}"


def difference(b: Any, a: Any) -> np.ndarray:
    """``B - A`` of two blocks of one shape, as float64 for the heatmap's difference mode.

    Equal values give exactly 0, also NaN on both sides and equal Infs (whose difference would
    be NaN): the same cells the comparison counts as unchanged.
    """
    bb = to_display_array(b).astype(np.float64)
    aa = to_display_array(a).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = bb - aa
    d[(bb == aa) | (np.isnan(bb) & np.isnan(aa))] = 0.0
    return d


def nonfinite_positions(data: np.ndarray, summary: ValueSummary, offset: tuple[int, int], stride: tuple[int, int],
                        limit: int) -> list[tuple[str, int, int]]:
    """``("shown_nan" | "shown_inf", tensor row, tensor column)`` of the first ``limit`` NaN/Inf
    of a handed-over block (row ``i`` is tensor row ``offset[0] + i * stride[0]``)."""
    if not (summary.n_nan or summary.n_inf):
        return []
    flat = np.flatnonzero(~np.isfinite(data))[:limit]
    rows, cols = np.unravel_index(flat, data.shape)
    nan = np.isnan(data.reshape(-1)[flat])
    (r0, c0), (rs, cs) = offset, stride
    return [("shown_nan" if n else "shown_inf", int(r0 + i * rs), int(c0 + j * cs))
            for i, j, n in zip(rows.tolist(), cols.tolist(), nan.tolist(), strict=True)]
