"""Saving a sharded safetensors set, writing only the shards whose tensors changed.

A 7B model is 14 GB in a handful of shards; an edit of one embedding row should not rewrite all
of them. When the session came from a sharded safetensors set, shards holding no changed tensor
are left in place (same folder) or hard-linked, else copied (another folder); only the others are
rewritten, each atomically, and a new Hugging Face style index is written last, so a crash
midway leaves the old index pointing at complete files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from paramedit.core.checkpoints.aliases import ALIASES_METADATA_KEY
from paramedit.core.checkpoints.detect import ShardIndex, read_index, resolve_folder
from paramedit.core.checkpoints.formats import LoadedCheckpoint, file_id
from paramedit.core.checkpoints.safetensors_mapping import (
    SAFETENSORS_DTYPES,
    SafetensorsHeader,
    read_safetensors_header,
)
from paramedit.core.checkpoints.saving import TEMP_SUFFIX, atomic_write
from paramedit.core.errors import CheckpointError, SaveError

__all__ = ["INDEX_SUFFIX", "is_sharded_safetensors", "save_sharded"]

INDEX_SUFFIX = ".safetensors.index.json"
DEFAULT_INDEX = "model" + INDEX_SUFFIX


@dataclass
class _Plan:
    """Which shard file gets which names; ``kept`` shards are reused byte for byte."""

    shards: dict[str, list[str]] = field(default_factory=dict)  # file name -> canonical names, in order
    kept: set[str] = field(default_factory=set)
    sizes: dict[str, int] = field(default_factory=dict)  # bytes of the kept shards' tensors


def is_sharded_safetensors(checkpoint: LoadedCheckpoint | None) -> bool:
    """Whether ``checkpoint`` was read from a sharded safetensors set (an index, or a folder with one)."""
    if checkpoint is None:
        return False
    fmt = checkpoint.metadata.get("paramedit.weights_format") if checkpoint.format == "hf-folder" else checkpoint.format
    return fmt == "safetensors-sharded"


def _source_index(source: LoadedCheckpoint) -> ShardIndex:
    path = Path(source.path)
    index_path = resolve_folder(path).file if path.is_dir() else path
    try:
        return read_index(index_path)
    except CheckpointError as exc:
        raise SaveError(f"cannot reuse the shards of {path}: {exc}") from exc


def _target(target: Path, source_index: ShardIndex | None) -> tuple[Path, str]:
    """(folder, index file name) for a folder or ``*.safetensors.index.json`` target."""
    if target.name.endswith(INDEX_SUFFIX):
        return target.parent, target.name
    if target.suffix in (".safetensors", ".json", ".pt", ".bin"):
        raise SaveError(f"cannot save a sharded set to {str(target)!r}: give a folder or a *{INDEX_SUFFIX} path")
    return target, source_index.path.name if source_index is not None else DEFAULT_INDEX


def _raw_metadata(index: ShardIndex | None) -> dict[str, object]:
    """The source index's own ``metadata`` as it was written (transformers' ``total_parameters``, ...)."""
    if index is None:
        return {}
    try:
        data = json.loads(index.path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    raw = data.get("metadata") if isinstance(data, dict) else None
    return dict(raw) if isinstance(raw, dict) else {}


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _matches(t: torch.Tensor, header: SafetensorsHeader, key: str) -> bool:
    entry = header.entries[key]
    return SAFETENSORS_DTYPES[entry.dtype] == t.dtype and entry.shape == tuple(t.shape)


def _unchanged_on_disk(path: Path, source: LoadedCheckpoint) -> bool:
    """Whether ``path`` is still the very file ``source`` mapped (else its bytes may not be ours)."""
    try:
        return source.file_ids.get(path) == file_id(path)
    except OSError:
        return False


def _plan_from_source(
    tensors: Mapping[str, torch.Tensor], index: ShardIndex, source: LoadedCheckpoint, changed: set[str]
) -> _Plan:
    plan = _Plan()
    folder = index.path.parent
    prefix = source.stripped_prefix or ""
    home: dict[str, str] = {}  # canonical name -> the source shard that held it
    for shard in index.shards:
        try:
            header = read_safetensors_header(folder / shard)
        except CheckpointError as exc:
            raise SaveError(f"cannot reuse shard {shard} of {folder}: {exc}") from exc
        names = []
        reusable = True
        for key in header.entries:
            name = key[len(prefix) :] if key.startswith(prefix) else None
            if name is None or name not in tensors:
                reusable = False  # the file holds a tensor the save does not: it must go
                continue
            names.append(name)
            home.setdefault(name, shard)
            reusable = reusable and name not in changed and _matches(tensors[name], header, key)
        plan.shards[shard] = names
        if reusable and names and _unchanged_on_disk(folder / shard, source):
            plan.kept.add(shard)
            plan.sizes[shard] = sum(header.entries[prefix + n].nbytes for n in names)
    for shard in plan.shards:  # a name found in two shards is stored once, in the first
        plan.shards[shard] = [n for n in plan.shards[shard] if home[n] == shard]
    new = [n for n in tensors if n not in home]
    if new:  # names the source never had go into its last shard, which is then rewritten
        last = index.shards[-1]
        plan.shards[last].extend(new)
        plan.kept.discard(last)
    plan.shards = {s: names for s, names in plan.shards.items() if names}
    return plan


def _fresh_plan(tensors: Mapping[str, torch.Tensor], stem: str, max_shard_bytes: int) -> _Plan:
    """Greedy split in order, as huggingface_hub does; a tensor bigger than the limit gets its own shard."""
    groups: list[list[str]] = []
    size = 0
    for name, t in tensors.items():
        if not groups or (size + _nbytes(t) > max_shard_bytes and groups[-1]):
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += _nbytes(t)
    n = len(groups)
    return _Plan(shards={f"{stem}-{i:05d}-of-{n:05d}.safetensors": g for i, g in enumerate(groups, 1)})


def _write_shard(path: Path, tensors: Mapping[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    contiguous: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for key, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        where = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if t.numel() and where in seen:  # safetensors refuses two names on one storage
            t = t.clone()
        seen.add(where)
        contiguous[key] = t
    return atomic_write(path, lambda tmp: save_file(contiguous, str(tmp), metadata={"format": "pt"}))


def _link_or_copy(source: Path, target: Path) -> Path:
    """Put ``source``'s bytes at ``target``: a hard link where the filesystem allows, else a copy."""
    with contextlib.suppress(OSError):
        if target.exists() and os.path.samefile(source, target):
            return target
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    try:
        os.link(source, temp)
        os.replace(temp, target)  # atomic, and replaces an existing file as a copy would
        return target
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
    return atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def save_sharded(
    tensors: Mapping[str, torch.Tensor],
    aliases: Mapping[str, str],
    target: str | Path,
    *,
    source: LoadedCheckpoint | None,
    changed: set[str],
    max_shard_bytes: int = 5 * 2**30,
    prefix: str | None = None,
) -> list[Path]:
    """Save ``tensors`` (canonical names) as a sharded safetensors set; return the files written.

    ``target`` is a folder (created if missing) or a ``*.safetensors.index.json`` path.
    ``changed`` names (canonical or alias) every tensor whose values may differ from ``source``.
    When ``source`` is a sharded safetensors set, a shard whose tensors are all unchanged (same
    names, dtypes and shapes) and whose file is still the one ``source`` mapped is reused: left untouched in its own folder, hard-linked or copied
    elsewhere. Other shards are rewritten under their old names, keeping the source's name prefix
    (``module.``) if one was stripped on loading; names the source lacked join its last shard.
    Without one, tensors are split into ``max_shard_bytes`` shards named
    ``model-00001-of-0000N.safetensors``. ``prefix`` (default: the source set's stripped
    wrapper prefix) is put back in front of every name written. Aliases are stored once and listed in the index
    metadata (``paramedit.aliases`` and Hugging Face's ``{alias: kept}`` entries). The index is
    written last; every file is written atomically.
    """
    aliases = dict(aliases)
    tensors = {n: t for n, t in tensors.items() if n not in aliases}
    if not tensors:
        raise SaveError("nothing to save: no tensors")
    source_index = _source_index(source) if source is not None and is_sharded_safetensors(source) else None
    if source_index is not None and not source_index.shards:
        source_index = None
    folder, index_name = _target(Path(target).expanduser(), source_index)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise SaveError(f"cannot save to {str(folder)!r}: {exc.strerror or exc}") from exc
    same_folder = source_index is not None and os.path.samefile(folder, source_index.path.parent)
    if same_folder and index_name != source_index.path.name:
        raise SaveError(f"{folder} holds the open set's index {source_index.path.name}; saving a second index "
                        f"{index_name} beside it would overwrite shards the first one uses. Save over "
                        f"{source_index.path.name} or into another folder.")  # fmt: skip

    if prefix is None:
        prefix = (source.stripped_prefix or "") if source_index is not None and source is not None else ""
    if source_index is not None:
        assert source is not None
        plan = _plan_from_source(tensors, source_index, source, {aliases.get(n, n) for n in changed})
    else:
        plan = _fresh_plan(tensors, index_name[: -len(INDEX_SUFFIX)], max_shard_bytes)

    written: list[Path] = []
    for shard, names in plan.shards.items():
        if shard in plan.kept:
            continue
        written.append(_write_shard(folder / shard, {prefix + n: tensors[n] for n in names}))
    if source_index is not None and not same_folder:
        for shard in plan.kept:
            written.append(_link_or_copy(source_index.path.parent / shard, folder / shard))

    shard_of = {n: shard for shard, names in plan.shards.items() for n in names}
    total = sum(plan.sizes.values()) + sum(_nbytes(tensors[n]) for s, names in plan.shards.items()
                                           if s not in plan.kept for n in names)  # fmt: skip
    metadata: dict[str, object] = {**_raw_metadata(source_index), "total_size": total}
    if aliases:
        keyed = {prefix + a: prefix + c for a, c in aliases.items()}
        metadata[ALIASES_METADATA_KEY] = json.dumps(keyed, sort_keys=True)
        metadata.update(keyed)  # huggingface_hub's way of recording a tied name it dropped
    index = {"metadata": metadata, "weight_map": {prefix + n: shard_of[n] for n in tensors}}
    text = json.dumps(index, indent=2) + "\n"
    written.append(atomic_write(folder / index_name, lambda tmp: tmp.write_text(text, encoding="utf-8")))
    return written
