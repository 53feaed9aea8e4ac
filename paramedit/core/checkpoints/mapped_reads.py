"""Reading a sample of a memory-mapped tensor through its file, not through the mapping.

A strided sample (a heatmap of every 137th row of an embedding, the colour scale of a table)
touches one page in every stretch of the tensor, and Linux maps the whole page-cache folio
around each page it faults in (up to 2 MB on 6.x kernels with large folios): a 400-row sample
of a 154 MB embedding makes all 154 MB resident. ``pread`` of those rows costs the bytes asked
for. Only bytes that are still the file's are read this way: ``/proc/self/pagemap`` says whether
a page of the private mapping was copied on write (an edit, or any other in-place write), and
such rows are read from memory. Where that cannot be told (no pagemap), nothing is read here.
"""

from __future__ import annotations

import math
import os
import sys
import weakref
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

__all__ = ["MappedFile", "pages_hold_file_bytes", "pages_resident", "read_through_file", "release_pages"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PRESENT, _SWAPPED, _FILE_PAGE = 1 << 63, 1 << 62, 1 << 61
#: Most rows read one by one; a bigger sample is cheaper as one strided copy.
MAX_ROWS = 4096
#: A row's byte span may be at most this many times the bytes it yields (else its stride wastes reads).
_MAX_SPAN_WASTE = 8


def _open_pagemap() -> int | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return os.open("/proc/self/pagemap", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


_PAGEMAP = _open_pagemap()


def _reopen_pagemap_in_child() -> None:
    # A forked child inherits the descriptor of its parent's pagemap: it would check the
    # parent's pages and miss its own writes.
    global _PAGEMAP
    if _PAGEMAP is not None:
        os.close(_PAGEMAP)
    _PAGEMAP = _open_pagemap()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reopen_pagemap_in_child)


class MappedFile:
    """One file mapped privately into a storage; reads its bytes again with ``pread``.

    Holds the storage (so the addresses it covers stay this file's) and a descriptor opened
    when it was mapped (so a save that renames a new file over the path does not change what is
    read).
    """

    def __init__(self, path: str | Path, storage: torch.UntypedStorage, *, base: int | None = None,
                 nbytes: int | None = None, mapped: os.stat_result | None = None) -> None:
        """``mapped``: the file's ``stat`` from before it was mapped; a different file now at
        ``path`` (renamed over it in between) raises OSError rather than be read for the old one."""
        self.path = Path(path)
        self.storage = storage
        self.base = storage.data_ptr() if base is None else base
        self.nbytes = storage.nbytes() if nbytes is None else nbytes
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        weakref.finalize(self, os.close, self.fd)
        if mapped is not None:
            now = os.fstat(self.fd)
            if (now.st_dev, now.st_ino, now.st_mtime_ns) != (mapped.st_dev, mapped.st_ino, mapped.st_mtime_ns):
                raise OSError(f"{self.path} changed while it was being opened")

    @classmethod
    def around(cls, path: str | Path, storage: torch.UntypedStorage) -> MappedFile | None:
        """The mapping of all of ``path`` that holds ``storage`` (one of ``torch.load(mmap=True)``'s
        storages, a slice of its private mapping of the whole file), or None when this process's
        maps do not show one (not Linux, not mapped, another file)."""
        ptr = storage.data_ptr()
        try:
            info = os.stat(path)
            lines = Path("/proc/self/maps").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or "-" not in fields[0]:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= ptr < end:
                # The file must be this one (same inode), mapped from its first byte on.
                if int(fields[4]) != info.st_ino or int(fields[2], 16) > start:
                    return None
                base = start - int(fields[2], 16)
                try:
                    return cls(path, storage, base=base, nbytes=info.st_size, mapped=info)
                except OSError:
                    return None
        return None

    def holds(self, t: torch.Tensor) -> bool:
        """Whether ``t``'s elements lie in this mapping."""
        ptr = t.data_ptr()
        return self.base <= ptr and ptr + _extent_bytes(t) <= self.base + self.nbytes


def _extent_bytes(t: torch.Tensor) -> int:
    """Bytes from ``t``'s first element to just past its last (non-negative strides)."""
    if t.numel() == 0:
        return 0
    return (sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True)) + 1) * t.element_size()


def _pagemap_entries(address: int, nbytes: int) -> np.ndarray | None:
    """This process's pagemap entries for the pages of ``[address, address + nbytes)`` (None
    where the pagemap cannot be read)."""
    if _PAGEMAP is None:
        return None
    first, last = address // _PAGE, (address + nbytes - 1) // _PAGE
    raw = os.pread(_PAGEMAP, 8 * (last - first + 1), 8 * first)
    if len(raw) != 8 * (last - first + 1):
        return None
    return np.frombuffer(raw, dtype=np.uint64)


def pages_hold_file_bytes(address: int, nbytes: int) -> bool:
    """Whether every page of ``[address, address + nbytes)`` still shows the file (pagemap):
    none was copied on write, so ``pread`` of the file gives the same bytes as memory."""
    entries = _pagemap_entries(address, nbytes)
    if entries is None:
        return False
    # Copied on write (maybe swapped out since): memory differs from the file.
    swapped = (entries & np.uint64(_SWAPPED)) != 0
    anonymous = ((entries & np.uint64(_PRESENT)) != 0) & ((entries & np.uint64(_FILE_PAGE)) == 0)
    return not bool((swapped | anonymous).any())


def pages_resident(address: int, nbytes: int) -> bool:
    """Whether every page of ``[address, address + nbytes)`` is already in this process's memory
    and still the file's: reading them there costs no residency that is not already paid."""
    entries = _pagemap_entries(address, nbytes) if nbytes > 0 else None
    if entries is None:
        return False
    present_file = (entries & np.uint64(_PRESENT | _FILE_PAGE)) == np.uint64(_PRESENT | _FILE_PAGE)
    return bool(present_file.all())


_MADV_DONTNEED = 4
_libc = None


def release_pages(t: torch.Tensor, files: Iterable[MappedFile]) -> int:
    """Let the kernel drop the resident pages of a memory-mapped tensor that are still the file's
    (``MADV_DONTNEED``; they are read again from the file if touched): the bytes released.

    Only whole pages inside the tensor, and only when none of them was copied on write (an edit
    lives in those pages and would be lost): anything else is left as it is.
    """
    global _libc
    if t.device.type != "cpu" or _PAGEMAP is None or not t.is_contiguous() or t.numel() == 0:
        return 0
    if not any(f.holds(t) for f in files):
        return 0
    start = -(-t.data_ptr() // _PAGE) * _PAGE
    end = (t.data_ptr() + t.numel() * t.element_size()) // _PAGE * _PAGE
    if end <= start or not pages_hold_file_bytes(start, end - start):
        return 0
    if _libc is None:
        import ctypes
        import ctypes.util

        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return end - start if _libc.madvise(start, end - start, _MADV_DONTNEED) == 0 else 0


def _row_offsets(shape: tuple[int, ...], strides: tuple[int, ...]) -> list[int]:
    """Element offsets of the first element of every row (all dims but the last)."""
    offsets = torch.zeros((), dtype=torch.int64)
    for n, s in zip(shape[:-1], strides[:-1], strict=True):
        offsets = (offsets.unsqueeze(-1) + torch.arange(n, dtype=torch.int64) * s)
    return offsets.reshape(-1).tolist()


def read_through_file(view: torch.Tensor, files: Iterable[MappedFile]) -> torch.Tensor | None:
    """A CPU copy of ``view`` read from the file it is mapped from, or None to read it as usual.

    None when ``view`` is not a strided sample of a mapped tensor, when it has too many rows to
    be worth it, or when pages cannot be checked. Rows whose pages were written since mapping
    are read from memory, so the result always equals ``view.clone()``.
    """
    if view.device.type != "cpu" or view.ndim == 0 or view.numel() == 0 or view.is_contiguous():
        return None
    if view.layout != torch.strided or view.is_quantized or view.is_conj() or view.is_neg() or _PAGEMAP is None:
        return None
    if any(n > 1 and st == 0 for n, st in zip(view.shape, view.stride(), strict=True)):
        return None  # an expanded (broadcast) tensor: its rows overlap, memory reads them as well
    mapped = next((f for f in files if f.holds(view)), None)
    if mapped is None:
        return None
    # Innermost dim last: a transposed slice reads along the file's rows, not across them.
    # Dims of size 1 go outermost: their stride is arbitrary and says nothing about layout.
    order = sorted(range(view.ndim), key=lambda d: (view.shape[d] != 1, -view.stride(d)))
    v = view.permute(order)
    shape, strides, item = tuple(v.shape), v.stride(), v.element_size()
    n, step = shape[-1], strides[-1]
    span = ((n - 1) * step + 1) * item
    rows = math.prod(shape[:-1])
    if rows > MAX_ROWS or span > max(_PAGE, _MAX_SPAN_WASTE * n * item):
        return None
    out = torch.empty((rows, n), dtype=v.dtype)
    start = v.data_ptr()
    for r, offset in enumerate(_row_offsets(shape, strides)):
        address = start + offset * item
        raw = os.pread(mapped.fd, span, address - mapped.base) if pages_hold_file_bytes(address, span) else b""
        if len(raw) == span:
            out[r] = torch.frombuffer(bytearray(raw), dtype=v.dtype)[::step]
        else:  # written since mapping (or the file shrank): this row from memory
            out[r] = torch.as_strided(v, (n,), (step,), v.storage_offset() + offset)
    inverse = [order.index(d) for d in range(view.ndim)]
    return out.reshape(shape).permute(inverse)
