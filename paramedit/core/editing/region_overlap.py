"""Where two regions of the same tensor meet, at the cost of the overlap, never the tensor.

Regions are basic indices (an int or a slice per dimension), so their intersection is the
product of per-dimension intersections. This lets staged edits be previewed on a small visible
window of a huge tensor, and lets a later staged edit see the values an earlier one will write.
"""

from __future__ import annotations

import torch

from paramedit.core.editing.regions import Region


def _dim_positions(part, size: int) -> tuple[torch.Tensor, bool]:
    """Positions a per-dimension index selects, and whether the dimension is kept."""
    if isinstance(part, slice):
        start, stop, step = part.indices(size)
        return torch.arange(start, stop, step, dtype=torch.long), True
    return torch.tensor([int(part)], dtype=torch.long), False


def _full_rank(values: torch.Tensor, kept: list[bool]) -> torch.Tensor:
    """View region values with a length-1 axis for every dimension an int index dropped."""
    shape = []
    it = iter(values.shape)
    for k in kept:
        shape.append(next(it) if k else 1)
    return values.reshape(shape)


def overlay(dest: torch.Tensor, dest_region: Region, src: torch.Tensor, src_region: Region) -> bool:
    """Write into ``dest`` (values of ``dest_region``) the values ``src`` (of ``src_region``)
    holds where the two regions overlap. Returns whether they overlapped at all."""
    if dest_region.tensor_shape != src_region.tensor_shape:
        raise ValueError("regions of different tensors")
    dest_sel: list[torch.Tensor] = []
    src_sel: list[torch.Tensor] = []
    dest_kept: list[bool] = []
    src_kept: list[bool] = []
    for size, d_part, s_part in zip(dest_region.tensor_shape, dest_region.index, src_region.index, strict=True):
        d_pos, d_keep = _dim_positions(d_part, size)
        s_pos, s_keep = _dim_positions(s_part, size)
        dest_kept.append(d_keep)
        src_kept.append(s_keep)
        # s_pos is an increasing arithmetic progression: rank of p in it is (p - start) / step.
        if s_pos.numel() == 0:
            return False
        s_start = int(s_pos[0])
        s_step = int(s_pos[1] - s_pos[0]) if s_pos.numel() > 1 else 1
        offset = d_pos - s_start
        hit = (offset >= 0) & (offset % s_step == 0) & (offset // s_step < s_pos.numel())
        d_idx = torch.nonzero(hit).flatten()
        if d_idx.numel() == 0:
            return False
        dest_sel.append(d_idx)
        src_sel.append(offset[d_idx] // s_step)
    if not dest_sel:  # 0-d tensor
        dest.copy_(src.reshape(dest.shape))
        return True
    n = len(dest_sel)
    grid = lambda sel: tuple(t.view([-1 if i == k else 1 for i in range(n)]) for k, t in enumerate(sel))  # noqa: E731
    dest_full = _full_rank(dest, dest_kept)
    src_full = _full_rank(src, src_kept)
    dest_full[grid(dest_sel)] = src_full[grid(src_sel)].to(dest.dtype)
    return True
