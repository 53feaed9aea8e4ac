"""Reading every value of a tensor once, a block of rows at a time, without making it resident.

A whole-model job (the scan, a comparison) touches every byte of a checkpoint that may be bigger
than memory. Reading a memory-mapped tensor through its mapping makes every page it touches
resident in this process; reading the same bytes with ``pread`` into one reused buffer costs the
buffer (and on a 2-core machine ``pread`` is as fast as first touching the mapping). Blocks whose pages were written since mapping (an edit) are read from memory,
so a block always holds the tensor's current values; so are blocks already resident (reading
them there costs nothing more).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from paramedit.core.checkpoints.mapped_reads import MappedFile, pages_hold_file_bytes, pages_resident

__all__ = ["CHUNK_ELEMENTS", "ChunkReader", "RowBlock"]

#: Elements per block: 16 MB of float32, small next to any model, big enough to run at memory speed.
CHUNK_ELEMENTS = 4 * 2**20


@dataclass
class RowBlock:
    """Rows ``start`` to ``start + len(values)`` of a tensor seen as (rows, ...)."""

    start: int
    values: torch.Tensor  # valid until the next block is read (it may live in a reused buffer)
    from_file: bool


@dataclass
class _Plan:
    start: int
    view: torch.Tensor
    file: MappedFile | None  # read through this file, or None: use the view as it is


class ChunkReader:
    """Iterates over a tensor's rows in blocks, through its file where it is still the file's."""

    def __init__(self, files: Iterable[MappedFile] = (), chunk_elements: int = CHUNK_ELEMENTS) -> None:
        self.files = list(files)
        self.chunk_elements = chunk_elements
        self._buffer: torch.Tensor | None = None
        self.bytes_from_file = 0
        self.bytes_from_memory = 0

    def blocks(self, tensor: torch.Tensor) -> Iterator[RowBlock]:
        """Blocks of whole rows (dim 0) of ``tensor``; a 0-D tensor is one row of one value."""
        for plan in self._plans(tensor):
            nbytes = plan.view.numel() * plan.view.element_size()
            values = self._read(plan) if plan.file is not None else None
            if values is None:
                self.bytes_from_memory += nbytes
                yield RowBlock(plan.start, plan.view, False)
            else:
                self.bytes_from_file += nbytes
                yield RowBlock(plan.start, values, True)

    def _plans(self, tensor: torch.Tensor) -> Iterator[_Plan]:
        t = tensor.detach()
        if t.ndim == 0:
            t = t.reshape(1)
        rows = t.shape[0]
        per_row = max(1, math.prod(t.shape[1:]))
        step = max(1, self.chunk_elements // per_row)
        for start in range(0, rows, step):
            view = t[start : start + step]
            yield _Plan(start, view, self._file_for(view))

    def _file_for(self, view: torch.Tensor) -> MappedFile | None:
        if not self.files or view.device.type != "cpu" or not view.is_contiguous() or view.numel() == 0:
            return None
        mapped = next((f for f in self.files if f.holds(view)), None)
        if mapped is None:
            return None
        nbytes = view.numel() * view.element_size()
        if pages_resident(view.data_ptr(), nbytes):
            return None  # already in memory: reading it there costs nothing more
        if not pages_hold_file_bytes(view.data_ptr(), nbytes):
            return None  # written since mapping: memory holds the current values
        return mapped

    def _read(self, plan: _Plan) -> torch.Tensor | None:
        assert plan.file is not None
        nbytes = plan.view.numel() * plan.view.element_size()
        if self._buffer is None or self._buffer.numel() < nbytes:
            self._buffer = torch.empty(max(nbytes, self.chunk_elements * 4), dtype=torch.uint8)
        return _read(plan.file, plan.view, self._buffer[:nbytes])


def _read(mapped: MappedFile, view: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    nbytes = target.numel()
    got = os.preadv(mapped.fd, [memoryview(np.asarray(target))], view.data_ptr() - mapped.base)
    if got != nbytes:
        return None  # the file is shorter than the mapping said: read memory instead
    return target.view(view.dtype).view(view.shape)
