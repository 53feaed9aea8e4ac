"""Loading checkpoints in the formats people actually have, safely, into a flat dict of tensors.

Pickles are read with ``torch.load(weights_only=True)``; a file that needs more is refused with
the globals it asks for (:class:`UntrustedCheckpointError`) and only loaded with
``weights_only=False`` when the user trusts it. Zip-format torch files and safetensors files are
memory-mapped copy-on-write: writing into a loaded tensor never changes the file, but a saver must
write a new file and rename it over the old one rather than truncate a file that is mapped.
``torch.distributed.checkpoint`` folders are read by torch's own reader (:mod:`dcp_reader`).
"""

from __future__ import annotations

import pickle
import re
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from paramedit.core.checkpoints.aliases import (
    ALIASES_METADATA_KEY,
    apply_declared_aliases,
    declared_aliases,
    find_shared_aliases,
    merge_aliases,
)
from paramedit.core.checkpoints.containers import classify_tensor, common_wrapper_prefix, select_container
from paramedit.core.checkpoints.dcp_reader import read_dcp, unsafe_dcp_globals
from paramedit.core.checkpoints.detect import detect_format, read_index, resolve_folder
from paramedit.core.checkpoints.layout import FileLayout, describe_layout
from paramedit.core.checkpoints.mapped_reads import MappedFile
from paramedit.core.checkpoints.pickle_safety import unsafe_globals_in_legacy_or_pickle, unsafe_globals_in_zip
from paramedit.core.checkpoints.safetensors_mapping import map_safetensors
from paramedit.core.checkpoints.torch_safety import require_safe_torch_for_pickles, verify_zip_storage_records
from paramedit.core.errors import CheckpointError, UntrustedCheckpointError

__all__ = [
    "ALIASES_METADATA_KEY",
    "LoadedCheckpoint",
    "detect_format",
    "find_shared_aliases",
    "load_checkpoint",
    "unsafe_globals",
]

_PICKLE_FORMATS = ("torch", "torch-legacy", "torchscript", "pickle")
_TRUST_HINT = "pass --trust on the command line (trust=True in Python)"


@dataclass
class LoadedCheckpoint:
    """What :func:`load_checkpoint` read, and everything it did to get there."""

    path: Path
    format: str
    tensors: dict[str, torch.Tensor]
    files: list[Path]
    container_key: str | None = None
    stripped_prefix: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    other_containers: list[str] = field(default_factory=list)
    trusted: bool = False
    mmapped: bool = False
    notes: list[str] = field(default_factory=list)
    # (st_dev, st_ino, st_mtime_ns) of each mapped file, taken before mapping it: a saver reuses a
    # file byte for byte only if it is still the one that was read.
    file_ids: dict[Path, tuple[int, int, int]] = field(default_factory=dict)
    # This process's private mappings of the files (safetensors, torch.load(mmap=True)): samples
    # of their tensors are read through the files, see mapped_reads.
    mapped_files: list[MappedFile] = field(default_factory=list)
    # What the file holds around its tensors (containers, other content), for a save that keeps it.
    layout: FileLayout = field(default_factory=lambda: FileLayout("state_dict"))
    # Tensors that cannot be edited (sparse, quantized, ...; reasons in ``skipped``), kept to be
    # written back as they were. Names as in ``tensors`` (wrapper prefix stripped).
    skipped_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    # The state dict as the file held it (its ``_metadata`` is kept on a save).
    original_entries: Mapping[object, object] = field(default_factory=dict)

    def rewrite_refusal(self) -> str | None:
        """Why the file cannot be rewritten whole with edited tensors, as a sentence (None: it can)."""
        reason = self.layout.rewrite_refusal()
        return f"{self.path} {reason}" if reason else None


@dataclass
class _Read:
    """Raw result of reading one file or index, before names are cleaned up."""

    entries: dict[object, object]
    files: list[Path]
    metadata: dict[str, str] = field(default_factory=dict)
    container_key: str | None = None
    other_containers: list[str] = field(default_factory=list)
    trusted: bool = False
    mmapped: bool = False
    notes: list[str] = field(default_factory=list)
    file_ids: dict[Path, tuple[int, int, int]] = field(default_factory=dict)
    mapped_files: list[MappedFile] = field(default_factory=list)
    layout: FileLayout = field(default_factory=lambda: FileLayout("state_dict"))


def natural_key(name: str) -> list[object]:
    """Sort key that puts ``layers.2`` before ``layers.10``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def natural_sorted(names) -> list[str]:
    return sorted(names, key=natural_key)


def file_id(path: Path) -> tuple[int, int, int]:
    """What identifies one version of a file: device, inode, modification time."""
    info = path.stat()
    return info.st_dev, info.st_ino, info.st_mtime_ns


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        return "the file ends too early" if isinstance(exc, EOFError) else type(exc).__name__
    text = text.splitlines()[0]
    return text if len(text) <= 200 else text[:197] + "…"


def _weights_unpickler_reason(exc: BaseException) -> str:
    marker = "WeightsUnpickler error:"
    text = str(exc)
    if marker in text:
        for line in text.split(marker, 1)[1].splitlines():
            if line.strip():
                return line.strip()[:200]
    return _short(exc)


def unsafe_globals(path: Path) -> list[str]:
    """The ``module.Name`` globals a pickle asks for beyond torch's ``weights_only`` allowlist.

    Reads the pickle opcodes statically; nothing in the file is executed or imported. Returns
    ``[]`` for formats without pickles (safetensors). For a folder or shard index, the union over
    the pickle files it would load.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt in ("torch", "torchscript"):
        return unsafe_globals_in_zip(path)
    if fmt in ("torch-legacy", "pickle"):
        return unsafe_globals_in_legacy_or_pickle(path, legacy=fmt == "torch-legacy")
    if fmt in ("folder", "hf-folder"):
        return unsafe_globals(resolve_folder(path).file)
    if fmt == "dcp":
        return unsafe_dcp_globals(path if path.is_dir() else path.parent)
    if fmt == "torch-sharded":
        index = read_index(path)
        found: set[str] = set()
        for shard in index.shards:
            if (path.parent / shard).is_file():
                found.update(unsafe_globals(path.parent / shard))
        return sorted(found)
    return []


def _globals_text(found: list[str], limit: int = 8) -> str:
    """The globals a pickle asks for, short: TorchScript's numbered copies of one class
    (``__torch__.___torch_mangle_12.Net``) count once."""
    unique = list(dict.fromkeys(re.sub(r"___torch_mangle_\d+\.", "", g) for g in found))
    shown = ", ".join(unique[:limit])
    return shown + (f", … ({len(unique) - limit} more)" if len(unique) > limit else "")


def _refuse(path: Path, fmt: str, exc: BaseException | None, details: str | None) -> None:
    """Raise UntrustedCheckpointError if the file needs trust, else a 'damaged' CheckpointError."""
    try:
        found = unsafe_globals(path)
    except CheckpointError as scan_error:
        raise CheckpointError(
            f"{path} could not be read: the file looks damaged or truncated ({_short(exc or scan_error)})",
            details=details or scan_error.details,
        ) from exc
    refused_by_torch = isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc)
    if fmt in ("torch", "torch-legacy") and not found and not refused_by_torch:
        assert exc is not None
        raise CheckpointError(
            f"{path} could not be read: the file looks damaged or truncated ({_short(exc)})", details=details
        ) from exc
    if fmt == "torchscript":
        what = ("is a TorchScript archive (torch.jit.save): it holds compiled code, and loading it runs that code; "
                "trusted, its weights can be read and saved to a new file (-o), but the archive itself is never "
                "rewritten")
    elif fmt == "pickle":
        what = ("is a plain Python pickle, not a torch.save file: reading it means running pickle, "
                "which can run code from the file")  # fmt: skip
    elif any(g.startswith("torch.nn.modules.") for g in found):
        what = ("holds a pickled model (torch.save(model)), not a state dict: loading it would run code from "
                "the file")
    elif found:
        what = "needs more than tensors: loading it would run code from the file"
    else:
        what = ("cannot be read by torch's safe loader, and reading it with the full unpickler could run "
                "code from the file")  # fmt: skip
    if found:
        asks = f"It asks for: {_globals_text(found)}."
    elif exc is not None:
        asks = f"The safe loader stopped at: {_weights_unpickler_reason(exc)}."
    else:
        asks = "It names no unusual globals, but a plain pickle is never read without trust."
    raise UntrustedCheckpointError(
        f"{path} {what}, so paramedit did not load it. {asks} "
        f"Load it only if you trust where it came from: {_TRUST_HINT}.",
        globals=found,
        details=details,
    ) from exc


def _torch_load(path: Path, *, weights_only: bool, mmap: bool, notes: list[str]) -> tuple[object, bool]:
    """``torch.load`` to CPU; returns (object, memory-mapped). Falls back to reading when mmap fails."""
    if mmap:
        try:
            return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=True), True
        except RuntimeError as exc:
            if "mmap" not in str(exc).lower():
                raise
            notes.append(f"could not memory-map the file ({_short(exc)}); read it into memory instead")
    return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=False), False


def _load_pickle(path: Path, fmt: str, trust: bool, notes: list[str]) -> tuple[object, bool, bool]:
    """Load a pickle-based file; returns (object, memory-mapped, read with the full unpickler).

    The safe loader is tried first even when the file is trusted: trust permits the full
    unpickler, it does not require it.
    """
    mmap = fmt == "torch" and verify_zip_storage_records(path)  # a short record would map garbage
    if fmt in ("torch", "torch-legacy"):
        warning = require_safe_torch_for_pickles(path, trusted=trust)  # refuses on torch < 2.6
        if warning:
            notes.append(warning)
        try:
            obj, mapped = _torch_load(path, weights_only=True, mmap=mmap, notes=notes)
            return obj, mapped, False
        except Exception as exc:
            if not trust:
                _refuse(path, fmt, exc, traceback.format_exc())
    elif not trust:
        _refuse(path, fmt, None, None)
    try:
        if fmt == "torchscript":
            with warnings.catch_warnings():  # torch deprecates TorchScript; the user has the file anyway
                warnings.simplefilter("ignore", DeprecationWarning)
                obj, mapped = torch.jit.load(str(path), map_location="cpu"), False
        elif fmt == "pickle":
            with open(path, "rb") as stream:
                obj, mapped = pickle.load(stream), False  # the user trusted this file
        else:
            obj, mapped = _torch_load(path, weights_only=False, mmap=mmap, notes=notes)
    except Exception as exc:
        details = traceback.format_exc()
        if isinstance(exc, (ModuleNotFoundError, AttributeError)):
            raise CheckpointError(
                f"{path} refers to Python code that cannot be found here ({_short(exc)}); "
                "the module that defined the objects in the file must be importable",
                details=details,
            ) from exc
        raise CheckpointError(f"{path} could not be loaded, even trusted: {_short(exc)}", details=details) from exc
    notes.append("loaded with the full unpickler (weights_only=False) because the file was trusted")
    return obj, mapped, True


def _torch_mapping(path: Path, entries: Mapping[object, object]) -> list[MappedFile]:
    """torch's private mapping of ``path``, found from one of its tensors (samples are read
    through the file, see :mod:`paramedit.core.checkpoints.mapped_reads`); empty when it cannot be found."""
    for value in entries.values():
        if isinstance(value, torch.Tensor) and value.layout == torch.strided and value.numel():
            found = MappedFile.around(path, value.untyped_storage())
            return [found] if found is not None else []
    return []


def _read_pickle_file(path: Path, fmt: str, trust: bool, container_key: str | None) -> _Read:
    notes: list[str] = []
    obj, mmapped, trusted = _load_pickle(path, fmt, trust, notes)
    chosen = select_container(obj, source=path, container_key=container_key)
    notes.extend(chosen.notes)
    if fmt == "torch-legacy":
        notes.append("file is a legacy (non-zip) torch file: cannot be memory-mapped")
    metadata = {}
    if isinstance(obj, Mapping):
        metadata = {str(k): str(v) for k, v in obj.items() if isinstance(v, (str, int, float, bool))}
    return _Read(
        entries=chosen.entries, files=[path], metadata=metadata, container_key=chosen.key,
        other_containers=chosen.other_containers, trusted=trusted, mmapped=mmapped, notes=notes,
        mapped_files=_torch_mapping(path, chosen.entries) if mmapped else [],
        layout=describe_layout(fmt, obj, chosen.path, chosen.module_type),
    )  # fmt: skip


def _read_safetensors(path: Path) -> _Read:
    try:
        identity = {path: file_id(path)}
    except OSError as exc:
        raise CheckpointError(f"could not read {path}: {exc.strerror or exc}", details=repr(exc)) from exc
    mapped = map_safetensors(path)
    # A safetensors header lists names in string order (layers.0, layers.1, layers.10, ..., layers.2);
    # people read them in natural order.
    entries: dict[object, object] = {name: mapped.tensors[name] for name in natural_sorted(mapped.tensors)}
    return _Read(entries=entries, files=[path], metadata=dict(mapped.header.metadata), mmapped=mapped.mapped,
                 notes=list(mapped.notes), file_ids=identity,
                 mapped_files=[mapped.file] if mapped.file is not None else [],
                 layout=FileLayout("safetensors"))  # fmt: skip


def _read_dcp(folder: Path, trust: bool, container_key: str | None) -> _Read:
    dcp = read_dcp(folder, trust=trust)
    chosen = select_container(dcp.state, source=folder, container_key=container_key)
    return _Read(
        entries=dict(chosen.entries), files=dcp.files, container_key=chosen.key,
        other_containers=chosen.other_containers, trusted=dcp.trusted, notes=dcp.notes + chosen.notes,
        layout=FileLayout("dcp", container_path=chosen.path, fqns=dcp.fqns),
    )  # fmt: skip


def _read_sharded(index_path: Path, trust: bool, container_key: str | None) -> _Read:
    index = read_index(index_path)
    folder = index_path.parent
    missing = [s for s in index.shards if not (folder / s).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"shard {missing[0]}{more} named in the index {index_path} is missing from {folder}")
    result = _Read(entries={}, files=[], metadata=dict(index.metadata), mmapped=True, layout=FileLayout("sharded"))
    found: dict[object, object] = {}
    for shard in index.shards:
        shard_path = folder / shard
        fmt = detect_format(shard_path)
        if fmt == "safetensors":
            part = _read_safetensors(shard_path)
        elif fmt in _PICKLE_FORMATS:
            part = _read_pickle_file(shard_path, fmt, trust, container_key)
            result.trusted = result.trusted or part.trusted
            result.layout = FileLayout("torch-sharded")
        else:
            raise CheckpointError(f"shard {shard} named in {index_path} is a {fmt}, not a checkpoint file")
        absent = [n for n, s in index.weight_map.items() if s == shard and n not in part.entries]
        if absent:
            raise CheckpointError(
                f"the index {index_path} says {absent[0]} is in {shard}, but that shard does not hold it"
                + (f" (nor {len(absent) - 1} more)" if len(absent) > 1 else "")
            )
        for key, value in part.metadata.items():
            result.metadata.setdefault(key, value)
        result.mmapped = result.mmapped and part.mmapped
        result.files.append(shard_path)
        result.file_ids.update(part.file_ids)
        result.mapped_files.extend(part.mapped_files)
        result.notes.extend(n for n in part.notes if n not in result.notes)
        found.update(part.entries)
    # The index's order is usually the model's; names only found in shards go last.
    # An index in string order was sorted by its writer (transformers sorts it): natural order reads
    # better; any other order is the model's own, kept.
    names = list(index.weight_map)
    result.entries = {name: found[name] for name in (natural_sorted(names) if names == sorted(names) else names)}
    extra = [k for k in found if k not in result.entries]
    result.entries.update((k, found[k]) for k in extra)
    if extra:
        result.notes.append(f"{len(extra)} tensor(s) are in the shards but not in the index: {', '.join(map(str, extra[:5]))}")
    result.notes.insert(0, f"read {len(index.shards)} shard(s) listed in {index_path.name}")
    return result


def _assemble(given: Path, fmt: str, read: _Read) -> LoadedCheckpoint:
    notes = list(read.notes)
    tensors: dict[str, torch.Tensor] = {}
    skipped: dict[str, str] = {}
    skipped_tensors: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for name, value in read.entries.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            ignored.append(str(name))
            continue
        reason = classify_tensor(value)
        if reason is not None:
            skipped[name] = reason
            skipped_tensors[name] = value
            continue
        if isinstance(value, nn.Parameter) or value.requires_grad:
            value = value.detach()  # plain data: the model's own Parameters are what train
        tensors[name] = value if value.device.type == "cpu" else value.cpu()
    if ignored:
        notes.append(f"ignored {len(ignored)} non-tensor entr{'y' if len(ignored) == 1 else 'ies'}: {', '.join(ignored[:8])}")
    if not tensors and not skipped:
        raise CheckpointError(f"no tensors found in {given}")

    declared = apply_declared_aliases(tensors, declared_aliases(read.metadata, set(tensors), notes), notes)
    prefix = common_wrapper_prefix(list(tensors) + list(skipped))
    if prefix:
        cut = len(prefix)
        tensors = {k[cut:]: v for k, v in tensors.items()}
        skipped = {k[cut:]: v for k, v in skipped.items()}
        skipped_tensors = {k[cut:]: v for k, v in skipped_tensors.items()}
        declared = {a[cut:] if a.startswith(prefix) else a: c[cut:] for a, c in declared.items()}
        notes.append(f"stripped prefix '{prefix}' (every name had it: DataParallel/DDP or torch.compile wrapping)")
    aliases = merge_aliases(find_shared_aliases(tensors), declared)
    return LoadedCheckpoint(
        path=given, format=fmt, tensors=tensors, files=read.files, container_key=read.container_key,
        stripped_prefix=prefix or None, aliases=aliases, skipped=skipped, metadata=read.metadata,
        other_containers=read.other_containers, trusted=read.trusted, mmapped=read.mmapped, notes=notes,
        file_ids=read.file_ids, mapped_files=read.mapped_files, layout=read.layout,
        skipped_tensors=skipped_tensors, original_entries=read.entries,
    )  # fmt: skip


def load_checkpoint(path: str | Path, *, trust: bool = False, container_key: str | None = None) -> LoadedCheckpoint:
    """Load a checkpoint file or folder into CPU tensors, without running code unless trusted.

    ``trust=True`` allows pickles that need more than tensors (``weights_only=False``): only for
    files from a source the user trusts. ``container_key`` (dotted; ``""`` for the top level)
    picks the tensor dict inside a nested checkpoint instead of the automatic choice.
    Safetensors files are mapped lazily and copy-on-write; a ``torch.distributed.checkpoint``
    folder is read into memory, and needs trust only if its ``.metadata`` names more than DCP's
    own classes. Raises :class:`UntrustedCheckpointError` when the file needs trust, :class:`CheckpointError`
    for anything else that cannot be read.
    """
    given = Path(path).expanduser()
    fmt = detect_format(given)
    target, notes, hf_folder = given, [], fmt == "hf-folder"
    if fmt in ("folder", "hf-folder"):
        choice = resolve_folder(given)
        target, hf_folder = choice.file, choice.is_hf
        notes.append(choice.note)
        fmt = detect_format(target)
    flat = fmt in ("safetensors", "safetensors-sharded")
    if flat and container_key not in (None, ""):
        raise CheckpointError(f"{target} is a flat safetensors checkpoint; it has no container '{container_key}'")
    if fmt == "safetensors":
        read = _read_safetensors(target)
    elif fmt in ("safetensors-sharded", "torch-sharded"):
        read = _read_sharded(target, trust, container_key)
    elif fmt in _PICKLE_FORMATS:
        read = _read_pickle_file(target, fmt, trust, container_key)
    elif fmt == "dcp":
        read = _read_dcp(target if target.is_dir() else target.parent, trust, container_key)
    else:  # pragma: no cover - detect_format only returns the kinds above for files
        raise CheckpointError(f"{target} is a {fmt}; paramedit cannot read it")
    read.notes[:0] = notes
    if hf_folder:
        read.metadata["paramedit.weights_format"] = fmt
        config = given / "config.json"
        if config.is_file():
            read.metadata["paramedit.config_json"] = str(config)
        fmt = "hf-folder"
    return _assemble(given, fmt, read)
