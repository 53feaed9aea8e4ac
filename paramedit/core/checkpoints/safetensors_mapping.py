"""Reading safetensors files as lazily mapped, copy-on-write tensors.

``safetensors.safe_open(...).get_tensor`` copies every tensor into fresh memory, so opening a
14 GB model costs 14 GB. Here the header is parsed and checked by hand and the file is mapped
once, privately (``MAP_PRIVATE``): pages are read only when touched, and an in-place edit copies
the touched page instead of writing through to the file. Each tensor is a view of its own byte
range of that one mapping, which stays alive as long as any tensor uses it.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from paramedit.core.checkpoints.mapped_reads import MappedFile
from paramedit.core.errors import CheckpointError

__all__ = [
    "SAFETENSORS_DTYPES",
    "HeaderEntry",
    "MappedSafetensors",
    "SafetensorsHeader",
    "map_safetensors",
    "read_safetensors_header",
]

# safetensors' dtype names -> torch dtype attribute names; dtypes this torch lacks are left out.
_DTYPE_NAMES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    "C64": "complex64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "F8_E8M0": "float8_e8m0fnu",
}  # fmt: skip
SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    code: getattr(torch, name) for code, name in _DTYPE_NAMES.items() if isinstance(getattr(torch, name, None), torch.dtype)
}
_MAX_HEADER = 100_000_000  # the limit safetensors itself enforces
METADATA_KEY = "__metadata__"


@dataclass(frozen=True)
class HeaderEntry:
    """One tensor's record in a safetensors header; offsets are relative to the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """A parsed and validated safetensors header."""

    path: Path
    data_start: int  # 8 + header length: where tensor bytes begin
    file_size: int
    entries: dict[str, HeaderEntry]
    metadata: dict[str, str]


@dataclass
class MappedSafetensors:
    """Tensors of one file, in header order, and how they were obtained."""

    header: SafetensorsHeader
    tensors: dict[str, torch.Tensor]
    mapped: bool
    notes: list[str] = field(default_factory=list)
    file: MappedFile | None = None  # the mapping, to read samples through the file (None: not mapped)


def _fail(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a valid safetensors file: {problem} (the file is probably truncated or corrupted)")


def _no_duplicates(path: Path):
    def hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in pairs:
            if key in seen:
                # json.loads would silently keep the last one; two tensors under one name is a broken file.
                raise _fail(path, f"its header lists {key!r} twice")
            seen[key] = value
        return seen

    return hook


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(path: Path, name: str, raw: object, data_size: int) -> HeaderEntry:
    if not isinstance(raw, dict):
        raise _fail(path, f"the header entry of {name!r} is not an object")
    dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if not isinstance(dtype, str):
        raise _fail(path, f"{name!r} has no dtype")
    if dtype not in SAFETENSORS_DTYPES:
        raise CheckpointError(
            f"{path}: tensor {name!r} has dtype {dtype!r}, which paramedit cannot read with this torch "
            f"(known: {', '.join(SAFETENSORS_DTYPES)})"
        )
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _fail(path, f"{name!r} has shape {shape!r}, not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise _fail(path, f"{name!r} has data_offsets {offsets!r}, not two integers")
    begin, end = offsets
    if not 0 <= begin <= end:
        raise _fail(path, f"{name!r} has data_offsets {offsets!r}: the end comes before the beginning")
    if end > data_size:
        raise _fail(path, f"{name!r} ends at byte {end} of the data, past its end ({data_size} bytes)")
    expected = math.prod(shape) * SAFETENSORS_DTYPES[dtype].itemsize
    if end - begin != expected:
        raise _fail(path, f"{name!r} is {dtype} {shape} ({expected} bytes) but its data_offsets span {end - begin} bytes")
    return HeaderEntry(name, dtype, tuple(shape), begin, end)


def read_safetensors_header(path: str | Path) -> SafetensorsHeader:
    """Parse and check a safetensors header without reading any tensor data.

    Raises :class:`CheckpointError` naming the file and the problem: a header length past the
    end of the file, JSON that is not an object or repeats a key, an unknown dtype, offsets past
    the end of the data, overlapping, or not matching shape x itemsize.
    """
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            size = stream.seek(0, 2)
            stream.seek(0)
            head = stream.read(8)
            if len(head) < 8:
                raise _fail(path, f"it is only {size} bytes long, shorter than the 8-byte header length")
            (length,) = struct.unpack("<Q", head)
            if length > _MAX_HEADER:
                raise _fail(path, f"its header claims to be {length} bytes, more than safetensors allows")
            if 8 + length > size:
                raise _fail(path, f"its header length ({length} bytes) points past the end of the file ({size} bytes)")
            raw = stream.read(length)
    except OSError as exc:
        raise CheckpointError(f"could not read {path}: {exc.strerror or exc}", details=repr(exc)) from exc
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates(path))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"its header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _fail(path, f"its header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop(METADATA_KEY, {})
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(path, "its __metadata__ is not an object of strings")
    data_start = 8 + length
    entries = {name: _entry(path, name, raw_entry, size - data_start) for name, raw_entry in header.items()}
    _check_overlaps(path, entries.values())
    return SafetensorsHeader(path, data_start, size, entries, dict(metadata))


def _check_overlaps(path: Path, entries: Iterable[HeaderEntry]) -> None:
    previous: HeaderEntry | None = None
    for entry in sorted((e for e in entries if e.nbytes), key=lambda e: e.begin):
        if previous is not None and entry.begin < previous.end:
            raise _fail(path, f"the bytes of {entry.name!r} overlap those of {previous.name!r}")
        previous = entry


def _copy_out(storage: torch.UntypedStorage, start: int, entry: HeaderEntry) -> torch.Tensor:
    """A fresh, aligned tensor holding the entry's bytes (for data the mapping cannot view)."""
    dtype = SAFETENSORS_DTYPES[entry.dtype]
    out = torch.empty(entry.shape, dtype=dtype)
    raw = torch.empty(0, dtype=torch.uint8).set_(storage[start : start + entry.nbytes])
    torch.empty(0, dtype=torch.uint8).set_(out.untyped_storage()).copy_(raw)
    return out


def map_safetensors(path: str | Path) -> MappedSafetensors:
    """Open a safetensors file as views of one private, copy-on-write mapping of it.

    Nothing but the header is read; a tensor's pages are read when first touched. Writing into a
    tensor never reaches the file. A tensor whose offset in the file is not a multiple of its
    item size cannot be viewed in place and is copied (with a note). Where the file cannot be
    mapped (no mmap, a big-endian machine) every tensor is read with the safetensors library.
    """
    path = Path(path)
    header = read_safetensors_header(path)
    notes: list[str] = []
    if sys.byteorder != "little":
        return _read_with_library(header, "this machine is big-endian; safetensors data is little-endian")
    try:
        before = path.stat()
        storage = torch.UntypedStorage.from_file(str(path), shared=False, nbytes=header.file_size)
    except (RuntimeError, OSError) as exc:
        return _read_with_library(header, f"could not memory-map the file ({str(exc).splitlines()[0] if str(exc) else exc})")
    tensors: dict[str, torch.Tensor] = {}
    copied: list[str] = []
    for name in sorted(header.entries):  # the order safetensors' own keys() gives
        entry = header.entries[name]
        dtype = SAFETENSORS_DTYPES[entry.dtype]
        start = header.data_start + entry.begin
        if entry.nbytes == 0:
            tensors[name] = torch.empty(entry.shape, dtype=dtype)
        elif start % dtype.itemsize:
            tensors[name] = _copy_out(storage, start, entry)
            copied.append(name)
        else:
            # A storage slice of exactly this tensor's bytes: distinct tensors never share a storage
            # object (so savers and alias detection treat them as separate), yet all keep the one
            # mapping alive.
            tensors[name] = torch.empty(0, dtype=dtype).set_(storage[start : start + entry.nbytes], 0, entry.shape)
    if copied:
        notes.append(
            f"{path.name}: {len(copied)} tensor(s) are not aligned to their item size in the file and were "
            f"copied into memory instead of mapped: {', '.join(copied[:5])}"
        )
    try:
        file: MappedFile | None = MappedFile(path, storage, mapped=before)
    except OSError:
        file = None  # readable a moment ago; without it, samples are read through the mapping
    return MappedSafetensors(header, tensors, mapped=True, notes=notes, file=file)


def _read_with_library(header: SafetensorsHeader, why: str) -> MappedSafetensors:
    from safetensors import safe_open

    try:
        with safe_open(str(header.path), framework="pt", device="cpu") as handle:
            tensors = {name: handle.get_tensor(name) for name in sorted(header.entries)}
    except Exception as exc:
        raise CheckpointError(f"{header.path} could not be read as safetensors: {exc}") from exc
    return MappedSafetensors(header, tensors, mapped=False, notes=[f"{header.path.name}: {why}; read it into memory instead"])
