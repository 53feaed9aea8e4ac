"""Writing edits back into a ``torch.distributed.checkpoint`` (DCP) folder, for the job to resume.

A DCP folder is a pickled ``.metadata`` (every tensor's chunks and where their bytes are:
file, offset, length) and ``__<rank>_<n>.distcp`` data files holding each chunk as a
``torch.save`` record, next to the job's other entries (step counters, optimizer
hyper-parameters) as pickled bytes. paramedit never unpickles those; it copies their bytes as
they are. Only the chunks of edited tensors are serialised again, each the way torch's
``FileSystemWriter`` does (``torch.save`` of the chunk), and only chunks whose values changed
(an edit of one row rewrites the rank file that holds that row), so the job's own ``dcp.load`` reads the
result, on any number of processes and any sharding (DCP reshards on load).

In place, the data files that hold an edited chunk are written under new names and the new
``.metadata``, pointing at them, replaces the old one last (atomically): a crash before that
leaves the old checkpoint whole; the old data files are removed after. Elsewhere, a new folder
is made beside the target and renamed into place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

import torch

from paramedit.core.checkpoints.dcp_reader import DCP_METADATA, load_dcp_metadata
from paramedit.core.checkpoints.saving import TEMP_SUFFIX, atomic_write, fsync_file
from paramedit.core.errors import SaveError

__all__ = ["write_dcp"]


def _chunk(tensor: torch.Tensor, offsets: tuple[int, ...], sizes: tuple[int, ...]) -> torch.Tensor:
    chunk = tensor.detach().cpu()
    for dim, (start, size) in enumerate(zip(offsets, sizes, strict=True)):
        chunk = chunk.narrow(dim, start, size)
    return chunk.contiguous().clone()  # a clone: torch.save of a view writes its whole storage


def _serialised(chunk: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    torch.save(chunk, buffer)
    return buffer.getvalue()


def _same_values(old: bytes, new: torch.Tensor) -> bool:
    """Whether a chunk's stored bytes already hold ``new`` (then they are kept as they are)."""
    try:
        stored = torch.load(io.BytesIO(old), weights_only=True, map_location="cpu")
    except Exception:
        return False
    return isinstance(stored, torch.Tensor) and stored.dtype == new.dtype and torch.equal(stored, new)


def _replacements(source: Path, by_file, entries, values, changed) -> dict[object, bytes]:
    """New bytes for the chunks whose values changed (a changed tensor's other chunks are kept)."""
    out: dict[object, bytes] = {}
    for name, items in by_file.items():
        todo = [(index, info) for index, info in items if index.fqn in changed]
        if not todo:
            continue
        with open(source / name, "rb") as stream:
            for index, info in todo:
                meta = next(c for c in entries[index.fqn].chunks if tuple(c.offsets) == tuple(index.offset))
                chunk = _chunk(values[index.fqn], tuple(meta.offsets), tuple(meta.sizes))
                stream.seek(info.offset)
                if not _same_values(stream.read(info.length), chunk):
                    out[index] = _serialised(chunk)
    return out


def write_dcp(source: Path, target: Path, values: Mapping[str, torch.Tensor], changed: set[str], *,
              trust: bool = False) -> Path:
    """Write the DCP checkpoint in ``source`` to ``target`` (the same folder: in place) with the
    tensors of ``changed`` fully-qualified names taken from ``values``; returns the new
    ``.metadata``."""
    metadata = load_dcp_metadata(source, trust=trust)
    entries = metadata.state_dict_metadata
    for fqn in changed:
        md = entries.get(fqn)
        if md is None or not hasattr(md, "chunks"):
            raise SaveError(f"{source} has no tensor {fqn!r} to write back")
        if tuple(md.size) != tuple(values[fqn].shape):
            raise SaveError(f"{fqn} is {list(values[fqn].shape)} here but {list(md.size)} in {source}")
    by_file: dict[str, list[tuple[object, object]]] = {}
    for index, info in metadata.storage_data.items():
        by_file.setdefault(info.relative_path, []).append((index, info))
    for items in by_file.values():
        for index, info in items:
            if index.fqn in changed and getattr(info, "transform_descriptors", None):
                raise SaveError(f"{source}: {index.fqn} is stored with transforms ({info.transform_descriptors}, e.g. "
                                "compression) that paramedit cannot write back; nothing was written")
    replacements = _replacements(source, by_file, entries, values, changed)
    rewrite = {name for name, items in by_file.items() if any(index in replacements for index, _ in items)}
    in_place = target.exists() and os.path.samefile(source, target)
    work = source if in_place else Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX,
                                                         dir=target.parent))
    tag = uuid.uuid4().hex[:8]
    renamed: dict[str, str] = {}
    written: list[Path] = []
    try:
        new_storage = dict(metadata.storage_data)
        for name, items in by_file.items():
            if name not in rewrite:
                if not in_place:
                    _link_or_copy(source / name, work / name)
                continue
            stem, dot, ext = name.rpartition(".")
            new_name = f"{stem}.paramedit-{tag}.{ext}" if dot else f"{name}.paramedit-{tag}"
            path = work / new_name if in_place else work / name
            with open(source / name, "rb") as old, open(path, "wb") as new:
                written.append(path)
                for index, info in sorted(items, key=lambda item: item[1].offset):
                    if index in replacements:
                        data = replacements[index]
                    else:
                        old.seek(info.offset)
                        data = old.read(info.length)
                        if len(data) != info.length:
                            raise SaveError(f"{source / name} ends before the bytes of {index.fqn}: it is truncated")
                    relative = new_name if in_place else name
                    new_storage[index] = dataclasses.replace(info, relative_path=relative, offset=new.tell(),
                                                             length=len(data))
                    new.write(data)
            fsync_file(path)
            renamed[name] = new_name
        metadata.storage_data = new_storage
        text = pickle.dumps(metadata)
        out = atomic_write(work / DCP_METADATA, lambda tmp: tmp.write_bytes(text))  # the commit point in place
        if not in_place:
            if target.exists():
                _replace_folder(work, target)
            else:
                os.replace(work, target)
            out = target / DCP_METADATA
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        if not in_place:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if in_place:
        for name in renamed:  # no longer referenced by the metadata
            with contextlib.suppress(OSError):
                (source / name).unlink()
    return out


def _replace_folder(work: Path, target: Path) -> None:
    if any(target.iterdir()):
        raise SaveError(f"cannot write a DCP folder at {target}: it exists and is not empty")
    os.replace(work, target)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
