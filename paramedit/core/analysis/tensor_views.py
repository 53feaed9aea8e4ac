"""Which view of a tensor to show first: the 2-D slice an N-D tensor opens on, and the first
tensor worth showing when a model opens.

No Qt here: the window asks these questions, the answers are plain data.

The slice rule (:func:`default_view_dims`), for a tensor of three or more dims:

* rows and columns are its two largest dims; a dim of size 1 is never one of them while there
  are two dims larger than 1 (``[1024, 1, 512, 1]`` opens as 1024 x 512, a 1x1 conv weight
  ``[out, in, 1, 1]`` as out x in);
* between dims of equal size the earlier one wins (``[8, 3, 3, 3]``, a 3x3 conv, opens as
  out x in, 8 x 3, with the kernel's two dims as index controls);
* the earlier of the two chosen dims is the rows, so the default view is never transposed;
* with one dim larger than 1 (``[1, 64, 1, 1]``) that dim is the columns and the rows are the
  first other dim, so the table shows one row of its 64 values; with none, the last two dims.

A 2-D tensor is always rows = dim 0, columns = dim 1; a 1-D tensor is one row (columns = dim 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from paramedit.core.session import Session
    from paramedit.core.tensor_tree import TensorInfo

__all__ = ["SAMPLE_BUDGET", "default_view_dims", "first_tensor_to_show", "looks_constant", "sample_region"]

#: Most elements read to decide whether a tensor is constant: a strided sample, never the whole
#: tensor (a 600 MB memory-mapped embedding costs what these few rows cost).
SAMPLE_BUDGET = 4096
#: Most rows (elements of all dims but the last) in that sample.
SAMPLE_ROWS = 64
#: Widest stride along a row: wider, and a row's sampled bytes would span many pages.
MAX_COLUMN_STEP = 8


def default_view_dims(shape: Iterable[int]) -> tuple[int, int]:
    """(row dim, column dim) a tensor of ``shape`` opens on; -1 where there is none.

    0-D: ``(-1, -1)``; 1-D: ``(-1, 0)``; 2-D: ``(0, 1)``; N-D: see the module's rule.
    """
    sizes = [int(n) for n in shape]
    ndim = len(sizes)
    if ndim == 0:
        return -1, -1
    if ndim == 1:
        return -1, 0
    if ndim == 2:
        return 0, 1
    big = [d for d in range(ndim) if sizes[d] > 1]
    if len(big) >= 2:
        # Largest first; equal sizes keep dim order (sorted is stable), so the earlier dim wins.
        first, second = sorted(sorted(big, key=lambda d: -sizes[d])[:2])
        return first, second
    if len(big) == 1:
        col = big[0]
        return next(d for d in range(ndim) if d != col), col
    return ndim - 2, ndim - 1


def sample_region(shape: Iterable[int], budget: int = SAMPLE_BUDGET) -> str:
    """An index string (``"[::786, :512:8]"``) that samples at most ``budget`` elements of a
    tensor of ``shape``: at most :data:`SAMPLE_ROWS` evenly spaced rows (all dims but the last),
    and in each row a short run from its start, every element or every few (at most every
    :data:`MAX_COLUMN_STEP`-th), so each row's bytes lie close together: a memory-mapped
    checkpoint is then read a few pages per row (see :mod:`paramedit.core.checkpoints.mapped_reads`)."""
    sizes = [int(n) for n in shape]
    if math.prod(sizes) <= budget or 0 in sizes:
        return "[...]"
    lead, last = sizes[:-1], sizes[-1]
    steps = [1] * len(lead)
    # Thin the leading dims, the one with most rows left first, until few enough rows remain.
    while lead and math.prod(-(-n // s) for n, s in zip(lead, steps, strict=True)) > SAMPLE_ROWS:
        d = max(range(len(lead)), key=lambda k: -(-lead[k] // steps[k]))
        steps[d] = min(lead[d], steps[d] + max(1, steps[d] // 2))
    rows = math.prod(-(-n // s) for n, s in zip(lead, steps, strict=True))
    per_row = max(1, budget // rows)
    parts = [":" if s == 1 else f"::{s}" for s in steps]
    if last <= per_row:
        parts.append(":")
    else:
        step = min(-(-last // per_row), MAX_COLUMN_STEP)
        parts.append(f":{per_row * step}" if step == 1 else f":{per_row * step}:{step}")
    return "[" + ", ".join(parts) + "]"


def looks_constant(values: torch.Tensor) -> bool:
    """Whether every value of ``values`` (a CPU sample) is the same; NaNs count as equal."""
    flat = values.detach().reshape(-1)
    if flat.numel() <= 1:
        return True
    if "float8" in str(flat.dtype):
        flat = flat.float()
    first = flat[0]
    same = flat == first
    if flat.is_floating_point() or flat.is_complex():
        same |= torch.isnan(flat) & torch.isnan(first)
    return bool(same.all())


def _is_weight_matrix(info: TensorInfo) -> bool:
    return len(info.shape) >= 2 and info.kind in ("parameter", "tensor") and info.numel > 0


def _varies(name: str, info: TensorInfo, read: Callable[[str, str], torch.Tensor]) -> bool | None:
    """Whether the tensor's sample varies; None when it cannot be read (meta, quantized...)."""
    try:
        return not looks_constant(read(name, sample_region(info.shape)))
    except Exception:  # a tensor that cannot be sampled (meta, quantized) is simply not chosen
        return None


def pick_first_tensor(infos: Mapping[str, TensorInfo], read: Callable[[str, str], torch.Tensor]) -> str:
    """The name :func:`first_tensor_to_show` picks, with ``read(name, region)`` giving the values
    of a region as a CPU tensor (how a session reads, e.g. :meth:`Session.preview`)."""
    # Trainable ones first: a frozen positional table is rarely what a user came to edit.
    matrices = sorted((n for n, info in infos.items() if _is_weight_matrix(info)), key=lambda n: infos[n].frozen)
    for name in matrices:
        if _varies(name, infos[name], read):
            return name
    if matrices:
        return matrices[0]
    for name, info in infos.items():
        if info.numel > 0 and _varies(name, info, read):
            return name
    return next(iter(infos), "")


def first_tensor_to_show(session: Session) -> str:
    """The first non-constant weight matrix of a session (a trainable parameter before a frozen
    one, or a checkpoint's tensor, of two or more dims, whose values are not all equal), so a
    model never opens on a blank all-zero bias. Decided on a strided sample of at most :data:`SAMPLE_BUDGET` values per tensor,
    read as the window reads (through the file for a memory-mapped checkpoint). Falls back to the
    first weight matrix, then to the first tensor that varies, then to the first tensor; "" for
    an empty session."""
    return pick_first_tensor(session.infos(), lambda name, region: session.preview(name, region)[0])
