"""Reading ``torch.distributed.checkpoint`` (DCP) folders on one process, without a process group.

FSDP and DTensor training jobs save a folder holding a pickled ``.metadata`` (every tensor's
global shape, dtype and where its chunks are) and ``__<rank>_<n>.distcp`` data files. The data is
read by torch's own :class:`FileSystemReader` through the public ``dcp.load`` with
``no_dist=True``, into full-size CPU tensors built from the metadata; the reader reassembles each
tensor from however many ranks' chunks it was saved as.

Safety: torch's reader loads ``.metadata`` with plain ``pickle.load`` (it does not use the
``weights_only`` loader), so a downloaded folder could run code on opening. paramedit unpickles
``.metadata`` itself with an allowlist of DCP's own metadata classes (plus torch dtypes,
``torch.Size`` and paths); any other global refuses the folder unless it is trusted. Tensor
chunks are read by torch with ``weights_only=True``; non-tensor entries (step counters, optimizer
hyper-parameters), which torch would unpickle with ``weights_only=False``, are never read.
"""

from __future__ import annotations

import importlib
import io
import pickle
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import torch

from paramedit.core.checkpoints.pickle_safety import pickle_globals
from paramedit.core.errors import CheckpointError, UntrustedCheckpointError

__all__ = ["DCP_METADATA", "DcpState", "is_dcp_metadata", "load_dcp_metadata", "read_dcp", "unsafe_dcp_globals"]

DCP_METADATA = ".metadata"
_DCP_MODULE = b"torch.distributed.checkpoint.metadata"
_TRUST_HINT = "pass --trust on the command line (trust=True in Python)"
_ALLOWED: dict[str, frozenset[str]] = {
    "torch.distributed.checkpoint.metadata": frozenset({
        "Metadata", "TensorStorageMetadata", "TensorProperties", "ChunkStorageMetadata", "BytesStorageMetadata",
        "MetadataIndex", "StorageMeta", "_MEM_FORMAT_ENCODING",
    }),
    "torch.distributed.checkpoint.filesystem": frozenset({"_StorageInfo"}),
    "torch.serialization": frozenset({"_get_layout"}),
    "torch": frozenset({"Size"}),
    "pathlib": frozenset({"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"}),
    "collections": frozenset({"OrderedDict"}),
}  # fmt: skip


@dataclass
class DcpState:
    """What a DCP folder holds: its tensors nested as they were saved, and how they were read."""

    state: dict[str, object]
    files: list[Path]
    trusted: bool = False
    notes: list[str] = field(default_factory=list)
    fqns: dict[tuple[str, ...], str] = field(default_factory=dict)  # nested path of a tensor -> its DCP key


def is_dcp_metadata(head: bytes) -> bool:
    """Whether the first bytes of a file are a pickled DCP ``Metadata`` (read, never unpickled)."""
    return head[:1] == b"\x80" and _DCP_MODULE in head[:256]


def _allowed(module: str, name: str) -> bool:
    if name in _ALLOWED.get(module, ()):
        return True
    # Dtypes, layouts and memory formats are plain torch attributes (torch.float32, torch.strided).
    value = getattr(torch, name, None) if module == "torch" else None
    return isinstance(value, (torch.dtype, torch.layout, torch.memory_format))


class _MetadataUnpickler(pickle.Unpickler):
    """Unpickles only DCP metadata classes; anything else is collected and refused."""

    def find_class(self, module: str, name: str) -> object:
        if not _allowed(module, name):
            raise _Refused(f"{module}.{name}")
        if module == "pathlib":
            # Only StorageMeta.checkpoint_id is a path; a pure path unpickles on any OS (a WindowsPath
            # cannot be made on Linux) and never touches the filesystem.
            return PureWindowsPath if "Windows" in name else PurePosixPath
        return getattr(importlib.import_module(module), name)


class _Refused(Exception):
    pass


def unsafe_dcp_globals(folder: Path) -> list[str]:
    """The globals ``.metadata`` names beyond DCP's own classes (a static read; nothing runs)."""
    try:
        with open(Path(folder) / DCP_METADATA, "rb") as stream:
            names = pickle_globals(stream)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / DCP_METADATA} could not be read: {exc}") from exc
    return [n for n in names if not _allowed(*n.rpartition(".")[::2])]


def _load_metadata(folder: Path, trust: bool, notes: list[str]) -> tuple[object, bool]:
    """(the Metadata object, whether the full unpickler was needed)."""
    path = folder / DCP_METADATA
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"could not read {path}: {exc.strerror or exc}", details=repr(exc)) from exc
    try:
        return _MetadataUnpickler(io.BytesIO(raw)).load(), False
    except _Refused as refused:
        if not trust:
            found = unsafe_dcp_globals(folder) or [str(refused)]
            raise UntrustedCheckpointError(
                f"{folder} is a torch.distributed.checkpoint folder whose {DCP_METADATA} needs more than DCP's own "
                f"metadata classes, so paramedit did not load it: reading it would run code from the file. It asks "
                f"for: {', '.join(found)}. Load it only if you trust where it came from: {_TRUST_HINT}.",
                globals=found,
            ) from None
    except Exception as exc:
        raise CheckpointError(
            f"{path} could not be read: the DCP metadata looks damaged or truncated ({exc})",
            details=traceback.format_exc(),
        ) from exc
    try:
        metadata = pickle.loads(raw)  # the user trusted this folder
    except Exception as exc:
        raise CheckpointError(f"{path} could not be loaded, even trusted: {exc}", details=traceback.format_exc()) from exc
    notes.append(f"read {DCP_METADATA} with the full unpickler because the folder was trusted")
    return metadata, True


def load_dcp_metadata(folder: str | Path, *, trust: bool = False) -> object:
    """The folder's ``Metadata``, unpickled with DCP's own classes only (unless trusted)."""
    metadata, _ = _load_metadata(Path(folder), trust, [])
    return metadata


def _data_files(folder: Path, metadata: object) -> list[Path]:
    """The data files the metadata points at, checked to exist and to lie inside the folder."""
    names: dict[str, None] = {}
    for info in (getattr(metadata, "storage_data", None) or {}).values():
        relative = getattr(info, "relative_path", None)
        if not isinstance(relative, str) or PurePosixPath(relative).is_absolute() or ".." in PurePosixPath(relative).parts:
            raise CheckpointError(f"{folder / DCP_METADATA} points at a data file outside the folder: {relative!r}")
        names[relative] = None
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"data file {missing[0]}{more} named in {folder / DCP_METADATA} is missing from {folder}")
    return [folder / n for n in names]


def _nest(flat: dict[str, torch.Tensor], planner_data: object) -> dict[str, object]:
    """Rebuild ``{"model": {...}, "optim": {...}}`` from DCP's flattened keys and their paths."""
    paths = planner_data if isinstance(planner_data, dict) else {}
    root: dict[str, object] = {}
    for fqn, tensor in flat.items():
        path = paths.get(fqn)
        keys = [str(k) for k in path] if isinstance(path, (tuple, list)) and path else [fqn]
        node = root
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):  # a key that is both a tensor and a container: keep it flat
                node, keys = root, [fqn]
                break
            node = child
        node[keys[-1]] = tensor
    return root


def _reason(exc: BaseException) -> str:
    """The first rank's own error, not DCP's wrapper around every rank's traceback."""
    failures = getattr(exc, "failures", None)
    if isinstance(failures, dict) and failures:
        first = next(iter(failures.values()))
        exc = first[0] if isinstance(first, tuple) and first and isinstance(first[0], BaseException) else exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, EOFError) and not text:
        return "a file ends too early"
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def read_dcp(folder: str | Path, *, trust: bool = False) -> DcpState:
    """Read every tensor of a DCP checkpoint folder into CPU tensors (not memory-mapped)."""
    folder = Path(folder)
    try:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint import FileSystemReader
        from torch.distributed.checkpoint.api import CheckpointException
        from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
        from torch.distributed.checkpoint.metadata import Metadata, StorageMeta, TensorStorageMetadata
    except ImportError as exc:  # pragma: no cover - torch builds without torch.distributed
        raise CheckpointError(f"{folder} is a torch.distributed.checkpoint folder, but this torch build has no "
                              f"torch.distributed to read it with ({exc})") from exc  # fmt: skip
    notes: list[str] = []
    metadata, trusted = _load_metadata(folder, trust, notes)
    if not isinstance(metadata, Metadata) or not isinstance(metadata.state_dict_metadata, dict):
        raise CheckpointError(f"{folder / DCP_METADATA} does not hold DCP metadata (found {type(metadata).__name__})")
    files = [folder / DCP_METADATA, *_data_files(folder, metadata)]

    class _Reader(FileSystemReader):
        def read_metadata(self, *args: object, **kwargs: object) -> Metadata:
            # The metadata was already unpickled safely above; torch's own read_metadata uses pickle.load.
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    entries = metadata.state_dict_metadata
    try:
        state = {fqn: torch.empty(tuple(md.size), dtype=md.properties.dtype)
                 for fqn, md in entries.items() if isinstance(md, TensorStorageMetadata)}  # fmt: skip
    except (TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"{folder / DCP_METADATA} describes a tensor torch cannot create: {exc}") from exc
    other = sorted((fqn for fqn in entries if fqn not in state), key=lambda fqn: fqn.count("."))  # top level first
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.load(state, storage_reader=_Reader(folder), planner=DefaultLoadPlanner(flatten_state_dict=False),
                     no_dist=True)  # fmt: skip
    except (Exception, CheckpointException) as exc:  # CheckpointException is a BaseException
        raise CheckpointError(
            f"{folder} could not be read by torch.distributed.checkpoint: {_reason(exc)} "
            "(a data file is probably truncated or corrupted)",
            details=traceback.format_exc(),
        ) from exc
    notes.append(f"read {len(state)} tensor(s) from the torch.distributed.checkpoint folder {folder.name} with torch's "
                 f"FileSystemReader into memory (DCP data cannot be memory-mapped)")  # fmt: skip
    if other:
        shown = ", ".join(other[:5]) + (", …" if len(other) > 5 else "")
        notes.append(f"did not read {len(other)} non-tensor entr{'y' if len(other) == 1 else 'ies'} ({shown}): "
                     "only tensors are edited, and torch unpickles them without weights_only")  # fmt: skip
    paths = metadata.planner_data if isinstance(metadata.planner_data, dict) else {}
    fqns = {tuple(str(k) for k in paths.get(fqn) or (fqn,)): fqn for fqn in state}
    return DcpState(_nest(state, metadata.planner_data), files, trusted=trusted, notes=notes, fqns=fqns)
