"""Saving a Hugging Face folder as a new folder, complete, as ``save_pretrained`` would leave it.

The weights go in under the source folder's own file name (``model.safetensors``, or the shards
and ``model.safetensors.index.json`` with unchanged shards hard-linked or copied), and every other
file of the source folder (``config.json``, tokenizer and generation files, ...) is copied, so
``from_pretrained(NEW)`` loads the result. Everything is written into a hidden temporary folder
beside the target and renamed into place at the end: a failed save leaves no half-made folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from paramedit.core.checkpoints.detect import CHECKPOINT_SUFFIXES, HF_WEIGHT_FILES, read_index, resolve_folder
from paramedit.core.checkpoints.saving import TEMP_SUFFIX
from paramedit.core.errors import CheckpointError, SaveError

__all__ = ["is_new_folder_target", "weights_name_for_new_folder", "write_new_folder"]


def is_new_folder_target(target: Path) -> bool:
    """A path that names a folder to create: no such path and not a checkpoint file's name (a
    folder may have a dot in its name, ``tiny-v1.5-edited``), or an empty folder."""
    if target.exists():
        return target.is_dir() and not any(target.iterdir())
    return not target.name.lower().endswith((*CHECKPOINT_SUFFIXES, ".json"))


def weights_name_for_new_folder(source_folder: Path) -> str:
    """The weights file a new copy of ``source_folder`` gets: the same as the source's, except a
    sharded set of torch files, which paramedit writes as safetensors shards."""
    name = resolve_folder(source_folder).file.name
    if name.endswith(".bin.index.json"):
        return "model.safetensors.index.json"
    return name


def _weight_files(folder: Path) -> set[str]:
    names = set(HF_WEIGHT_FILES)
    for index_name in [n for n in HF_WEIGHT_FILES if n.endswith(".index.json")]:
        index = folder / index_name
        if index.is_file():
            with contextlib.suppress(CheckpointError):
                names.update(read_index(index).shards)
    return names


def side_files(source_folder: Path) -> list[Path]:
    """The source folder's files that are not its weights (config, tokenizer, generation, ...)."""
    skip = _weight_files(source_folder)
    return sorted(p for p in source_folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name not in skip)


def write_new_folder(target: Path, source_folder: Path, weights_name: str,
                     write_weights: Callable[[Path], Path]) -> Path:
    """Create ``target`` holding the weights (written by ``write_weights(path)``) and the source's
    other files; returns the weights file (or index) in the new folder."""
    target = target.expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise SaveError(f"cannot save to {str(target)!r}: folder {str(parent)!r} does not exist")
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise SaveError(f"cannot save a new folder at {str(target)!r}: it exists and is not empty")
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=parent))
    except OSError as exc:
        raise SaveError(f"cannot save to {str(target)!r}: {exc.strerror or exc}") from exc
    try:
        write_weights(work / weights_name)
        for path in side_files(source_folder):
            shutil.copy2(path, work / path.name)
        for path in work.iterdir():
            if path.is_file():
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        os.chmod(work, 0o777 & ~_umask())
        os.replace(work, target)  # a new name, or an empty folder: atomic on POSIX
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, SaveError) or not isinstance(exc, Exception):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SaveError(f"saving the folder {str(target)!r} failed, nothing was left behind: {reason}") from exc
    return target / weights_name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
