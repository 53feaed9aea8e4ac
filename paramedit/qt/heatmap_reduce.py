"""Block reductions of a 2-D array for the heatmap: each displayed pixel stands for a block of
values, and which value it shows is the user's choice.

* ``max |v|``: the block's value of largest magnitude (sign kept) — an outlier always shows;
* ``min |v|``: the value of smallest magnitude — a zero (dead) row or column always shows;
* ``mean``: the block's mean.

Every reduction keeps NaN (a block holding one shows NaN) so the overlay never loses it. No Qt
here; the work is done a band of rows at a time, so temporaries stay small whatever the array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_ABS", "MEAN", "MIN_ABS", "REDUCTIONS", "SAMPLE", "block_extreme", "block_reduce"]

SAMPLE = "sample"  # not a reduction: an even sample of rows and columns is fetched instead
MEAN = "mean"
MAX_ABS = "max |v|"
MIN_ABS = "min |v|"
REDUCTIONS = (SAMPLE, MEAN, MAX_ABS, MIN_ABS)
_BAND = 1 << 22  # elements per band of rows: 16 MB of float32 temporaries at most


def _reduce_rows(a: np.ndarray, f: int, func) -> np.ndarray:
    if f == 1:
        return a
    full = a.shape[0] // f * f
    parts = [func(a[:full].reshape(full // f, f, a.shape[1]), axis=1)] if full else []
    if full < a.shape[0]:
        parts.append(func(a[full:], axis=0, keepdims=True))
    return np.concatenate(parts, axis=0)


def _reduce_cols(a: np.ndarray, f: int, ufunc) -> np.ndarray:
    if f == 1:
        return a
    if f > 8:  # long runs: reduce the inner axis of a reshaped view
        full = a.shape[1] // f * f
        parts = [ufunc.reduce(a[:, :full].reshape(a.shape[0], full // f, f), axis=2)] if full else []
        if full < a.shape[1]:
            parts.append(ufunc.reduce(a[:, full:], axis=1, keepdims=True))
        return np.concatenate(parts, axis=1)
    out = a[:, 0::f].copy()  # short runs: f strided passes beat reducing a tiny inner axis
    for k in range(1, f):
        part = a[:, k::f]
        ufunc(out[:, : part.shape[1]], part, out=out[:, : part.shape[1]])
    return out


def block_extreme(data: np.ndarray, fr: int, fc: int) -> np.ndarray:
    """Reduce float ``data`` by ``fr x fc`` blocks to each block's value of largest magnitude.

    Keeps the sign, so a lone outlier in a huge matrix stays visible, and never hides NaN/Inf:
    a block holding a NaN shows NaN, else one holding +/-Inf shows it.  The last block along
    each axis may be partial.  ``fr == fc == 1`` returns ``data`` itself.
    """
    if fr == 1 and fc == 1:
        return data
    hi, lo = _reduce_rows(data, fr, np.max), _reduce_rows(data, fr, np.min)
    if fc > 1:
        hi, lo = _reduce_cols(hi, fc, np.maximum), _reduce_cols(lo, fc, np.minimum)
    return np.where(hi >= -lo, hi, lo)


def _block_min_abs(a: np.ndarray, fr: int, fc: int) -> np.ndarray:
    pos = np.where(a >= 0, a, np.inf)
    neg = np.where((a < 0) | np.isnan(a), a, -np.inf)  # NaN goes here, where the max keeps it
    p = _reduce_cols(_reduce_rows(pos, fr, np.min), fc, np.minimum)
    n = _reduce_cols(_reduce_rows(neg, fr, np.max), fc, np.maximum)
    return np.where(p <= -n, p, n)  # a NaN in n makes the comparison False: NaN wins


def _block_mean(a: np.ndarray, fr: int, fc: int) -> np.ndarray:
    sums = _reduce_cols(_reduce_rows(a.astype(np.float64), fr, np.sum), fc, np.add)
    rows = np.full(sums.shape[0], fr, np.float64)
    rows[-1] = a.shape[0] - fr * (sums.shape[0] - 1)
    cols = np.full(sums.shape[1], fc, np.float64)
    cols[-1] = a.shape[1] - fc * (sums.shape[1] - 1)
    with np.errstate(invalid="ignore", over="ignore"):
        return sums / np.outer(rows, cols)


def block_reduce(data: np.ndarray, fr: int, fc: int, how: str = MAX_ABS) -> np.ndarray:
    """Reduce float32 ``data`` by ``fr x fc`` blocks (the last ones may be partial) the way
    ``how`` says: :data:`MAX_ABS`, :data:`MIN_ABS` or :data:`MEAN` (:data:`SAMPLE` means
    :data:`MAX_ABS` here: an array handed over too big is reduced, never cut)."""
    if fr == 1 and fc == 1:
        return data
    if how in (SAMPLE, MAX_ABS):
        return block_extreme(data, fr, fc)
    reduce = _block_min_abs if how == MIN_ABS else _block_mean
    band = fr * max(1, _BAND // max(1, fr * data.shape[1]))
    parts = [reduce(data[r : r + band], fr, fc) for r in range(0, data.shape[0], band)]
    return np.concatenate(parts, axis=0).astype(np.float32, copy=False)
