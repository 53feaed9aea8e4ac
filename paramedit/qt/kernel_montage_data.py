"""NumPy side of the kernel montage: which channels are shown, where each tile lies, the image.

No Qt here. A montage is one image of every shown kernel of a ``[out, in, kh, kw]`` weight, tiles
``kh × kw`` pixels with a one-pixel gap (NaN: pyqtgraph draws it transparent, so the view's
background shows as grid lines). Tile ``(a, b)`` is sample indices: weight channels
``(a * steps[0], b * steps[1])``. In RGB mode a weight with 3 input channels has one tile per
output channel, wrapped into a near-square grid (row-major), its channels as red, green, blue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from paramedit.qt.heatmap_data import MAX_DISPLAY, ordinal

__all__ = ["MAX_TILES", "MontageLayout", "build_montage", "picked_outputs", "plan_montage", "tile_ticks"]

Rect = tuple[float, float, float, float]  # x, y, width, height in image pixels

#: Most tiles along one side: more would be under ~4 screen pixels each, gaps lost in the scaling.
MAX_TILES = 128


@dataclass(frozen=True)
class MontageLayout:
    """Where the shown kernels of a weight of ``shape`` lie in the montage image."""

    shape: tuple[int, int, int, int]  # out, in, kh, kw of the whole weight
    steps: tuple[int, int]  # every steps[0]-th output and steps[1]-th input channel is shown
    rgb: bool
    grid: tuple[int, int]  # tile rows, tile columns

    @property
    def shown(self) -> tuple[int, int]:
        """Sampled output and input channels (the sample's first two dimensions)."""
        return -(-self.shape[0] // self.steps[0]), -(-self.shape[1] // self.steps[1])

    @property
    def pitch(self) -> tuple[int, int]:
        """Pixels from one tile to the next, down and across (the kernel plus its gap)."""
        return self.shape[2] + 1, self.shape[3] + 1

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.grid[0] * self.pitch[0] - 1, self.grid[1] * self.pitch[1] - 1

    def tile_at(self, x: float, y: float) -> tuple[int, int, int, int] | None:
        """``(a, b, ky, kx)`` of the kernel element at image pixel ``(x, y)``; None on a gap."""
        (py, px), (kh, kw) = self.pitch, self.shape[2:]
        row, ky = divmod(math.floor(y), py)
        col, kx = divmod(math.floor(x), px)
        if not (0 <= row < self.grid[0] and 0 <= col < self.grid[1] and ky < kh and kx < kw):
            return None
        a, b = (row * self.grid[1] + col, 0) if self.rgb else (row, col)
        return (a, b, ky, kx) if a < self.shown[0] else None

    def tile_rect(self, a: int, b: int, whole_row: bool = False) -> Rect:
        """``(x, y, w, h)`` of tile ``(a, b)`` (or of its whole row of tiles), half a gap around it."""
        row, col = divmod(a, self.grid[1]) if self.rgb else (a, b)
        (py, px), (kh, kw) = self.pitch, self.shape[2:]
        if whole_row and not self.rgb:
            return -0.5, row * py - 0.5, self.image_shape[1] + 1.0, kh + 1.0
        return col * px - 0.5, row * py - 0.5, kw + 1.0, kh + 1.0

    def outline_rects(self, selected: list[int], current: tuple[int, int] | None) -> tuple[list[Rect], Rect | None]:
        """Rows (RGB: tiles) of the ``selected`` output channels and the tile of the ``current``
        kernel, each where it is sampled (a channel between two samples has nothing to outline)."""
        (so, si), (n_out, n_in) = self.steps, self.shape[:2]
        rows = [self.tile_rect(o // so, 0, whole_row=True) for o in selected if o % so == 0 and 0 <= o < n_out]
        o, i = current or (-1, -1)
        i = 0 if self.rgb else i
        shown = 0 <= o < n_out and 0 <= i < n_in and o % so == 0 and i % si == 0
        return rows, self.tile_rect(o // so, i // si) if shown else None

    def row_labels(self) -> list[str]:
        """Left axis: the output channel of each tile row (in RGB mode, of its first tile)."""
        per_row = self.grid[1] if self.rgb else 1
        return [str(r * per_row * self.steps[0]) for r in range(self.grid[0])]

    def column_labels(self) -> list[str]:
        """Top axis: input channels; in RGB mode what each column adds to the row's channel."""
        if self.rgb:
            return [f"+{c * self.steps[0]}" for c in range(self.grid[1])]
        return [str(c * self.steps[1]) for c in range(self.grid[1])]

    def outputs_in_row(self, row: int) -> list[int]:
        """Weight output channels of the tiles in tile row ``row``."""
        if not self.rgb:
            return [row * self.steps[0]]
        first = row * self.grid[1]
        return [a * self.steps[0] for a in range(first, min(first + self.grid[1], self.shown[0]))]

    def sampling_note(self) -> str:
        """"" when every kernel is shown, else which channels are: a sample."""
        (so, si), (n_out, n_in) = self.steps, self.shape[:2]
        if (so, si) == (1, 1):
            return ""
        if so == si and n_out == n_in:
            return f"showing every {ordinal(so)} of {n_out} output and input channels: a sample"
        parts = [f"every {ordinal(k)} of {n} {what} channels" for k, n, what in
                 ((so, n_out, "output"), (si, n_in, "input")) if k > 1]
        return "showing " + " and ".join(parts) + ": a sample"


def _fit(pitch: int) -> int:
    """Most tiles of ``pitch`` pixels along a side of at most MAX_DISPLAY pixels (at least one)."""
    return max(1, min(MAX_TILES, (MAX_DISPLAY + 1) // pitch))


def plan_montage(shape: tuple[int, int, int, int], rgb: bool) -> MontageLayout:
    """The strides and grid that keep the montage of a ``shape`` weight within about 2048 × 2048
    pixels and MAX_TILES tiles a side; ``rgb`` needs 3 input channels."""
    n_out, n_in, kh, kw = shape
    fit_rows, fit_cols = _fit(kh + 1), _fit(kw + 1)
    if not rgb:
        steps = -(-n_out // fit_rows), -(-n_in // fit_cols)
        return MontageLayout(shape, steps, False, (-(-n_out // steps[0]), -(-n_in // steps[1])))
    step = -(-n_out // (fit_rows * fit_cols))
    n = -(-n_out // step)
    # Near-square in pixels, not in tiles, when kernels are not square.
    cols = min(fit_cols, max(1, math.ceil(math.sqrt(n * (kh + 1) / (kw + 1)))))
    if -(-n // cols) > fit_rows:  # very wide kernels: as many columns as fit
        cols = fit_cols
    return MontageLayout(shape, (step, 1), True, (-(-n // cols), cols))


def tile_ticks(n: int, pitch: int, lo: float, hi: float, size: float, need: float) -> tuple[float, list[float]]:
    """Axis ticks at the centres of every k-th of ``n`` tiles in view (``lo..hi`` over ``size``
    screen pixels), k the first of 1, 2, 5, 10, ... that leaves ``need`` pixels per label."""
    per_tile = size * pitch / max(hi - lo, 1e-9)
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 10**9) if s * per_tile >= need)
    first, last = max(0, math.floor(lo / pitch)), min(n - 1, math.ceil(hi / pitch))
    return step * pitch, [t * pitch + (pitch - 1) / 2 for t in range(first, last + 1) if t % step == 0]


def picked_outputs(selected: list[int], anchor: int | None, channels: list[int], ctrl: bool, shift: bool) -> list[int]:
    """The output channels selected after picking ``channels`` (a row of tiles): Shift selects
    every channel from ``anchor`` (sampled or not), Ctrl toggles them, else they replace it."""
    now, picked = set(selected), set(channels)
    if shift and anchor is not None:
        lo, hi = sorted((anchor, channels[0]))
        return sorted(set(range(lo, hi + 1)) | picked)
    if ctrl:
        return sorted(now - picked if now >= picked else now | picked)
    return sorted(picked)


def build_montage(sample: np.ndarray, layout: MontageLayout, m: float) -> np.ndarray:
    """The montage of ``sample`` (``[shown out, shown in, kh, kw]`` float32), NaN in the gaps.

    Values as they are (H, W), or in RGB mode (H, W, 3) scaled to 0..1 around 0.5 by ``±m``.
    """
    n_out, n_in, kh, kw = sample.shape
    rows, cols = layout.grid
    if layout.rgb:
        tiles = np.full((rows * cols, kh + 1, kw + 1, 3), np.nan, np.float32)
        tiles[:n_out, :kh, :kw] = sample.transpose(0, 2, 3, 1) * np.float32(0.5 / m) + np.float32(0.5)
        np.clip(tiles, 0.0, 1.0, out=tiles)  # beyond a clipped scale: saturated (NaN gaps stay NaN)
        full = tiles.reshape(rows, cols, kh + 1, kw + 1, 3).transpose(0, 2, 1, 3, 4)
        image = full.reshape(rows * (kh + 1), cols * (kw + 1), 3)
    else:
        full = np.full((n_out, kh + 1, n_in, kw + 1), np.nan, np.float32)
        full[:, :kh, :, :kw] = sample.transpose(0, 2, 1, 3)
        image = full.reshape(n_out * (kh + 1), n_in * (kw + 1))
    return np.ascontiguousarray(image[:-1, :-1])
