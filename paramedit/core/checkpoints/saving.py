"""Atomic saving: a temporary file in the target folder, fsync, then ``os.replace``.

The old file is never left half-written, and saving over the (possibly memory-mapped) file a
session was loaded from is safe: the mapping keeps the old inode alive until it is released.

Each save writes into its own hidden temporary folder next to the target,
``.<name>.<random>.paramedit-tmp/<name>``, holding an advisory lock on that folder until the
result has been renamed over the target. A folder rather than a file because some writers
(safetensors >= 0.8) write their own temporary file beside the path they are given and rename
it: inside our folder, whatever a killed writer leaves behind is ours to find and remove.
:func:`clean_stale_temp_files` removes what killed saves left, and never touches a save that
is still running (its lock is held).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from paramedit.core.errors import SaveError

try:  # POSIX advisory locks tell a running save from a dead one
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ALIASES_METADATA_KEY",
    "TEMP_SUFFIX",
    "atomic_write",
    "clean_stale_temp_files",
    "fsync_file",
    "save_tensors",
    "stale_temp_files",
    "unsavable_reason",
    "write_json",
]

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".paramedit-tmp"
#: Names a torch.save file is saved under (what paramedit and the tools that write them open).
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
ALIASES_METADATA_KEY = "paramedit.aliases"
# ".<target name>.<mkdtemp's random part>.paramedit-tmp"; nothing else is ever removed.
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}" + re.escape(TEMP_SUFFIX) + r"$")
# Where locks are unavailable, only temporaries older than this process can be proven dead.
_PROCESS_START = time.time()


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/filesystem can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_folder(folder: Path) -> int | None:
    """Hold an exclusive advisory lock on ``folder`` (POSIX); the kernel drops it if we die."""
    if fcntl is None:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove_temp(entry: Path) -> bool:
    """Remove a temporary file, or a temporary folder holding only files; never follow links."""
    try:
        info = entry.lstat()
        if stat.S_ISREG(info.st_mode):
            entry.unlink()
            return True
        if not stat.S_ISDIR(info.st_mode):
            return False
        children = list(entry.iterdir())
        if any(stat.S_ISDIR(child.lstat().st_mode) for child in children):
            return False  # not what a save leaves; leave it to the user
        for child in children:
            child.unlink()
        entry.rmdir()
        return True
    except OSError:
        return False


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp_path)``, then atomically put the result at ``path``.

    Keeps the permissions (and, where allowed, the owner and group) of an existing target. On
    any failure the target is untouched and the temporary file removed; the error is raised as
    :class:`SaveError`.
    """
    path = Path(path).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise SaveError(f"cannot save to {str(path)!r}: it is a folder")
    if not folder.is_dir():
        raise SaveError(f"cannot save to {str(path)!r}: folder {str(folder)!r} does not exist")
    _clean_for(path)
    try:
        old = path.stat() if path.exists() else None
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=folder))
    except OSError as exc:
        raise SaveError(f"cannot save to {str(path)!r}: {exc.strerror or exc}") from exc
    lock = _lock_folder(tmp_dir)
    tmp = tmp_dir / path.name
    try:
        write(tmp)
        if not tmp.is_file():
            raise SaveError(f"saving {str(path)!r} failed, the previous file is unchanged: nothing was written")
        fsync_file(tmp)
        os.chmod(tmp, stat.S_IMODE(old.st_mode) if old is not None else _default_mode())
        if old is not None and hasattr(os, "chown"):
            with contextlib.suppress(OSError):  # only root may give a file away; keep the group if we can
                tmp_stat = tmp.stat()
                if (tmp_stat.st_uid, tmp_stat.st_gid) != (old.st_uid, old.st_gid):
                    os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
        _fsync_dir(folder)
        _remove_temp(tmp_dir)  # empty now; removed while still locked, so no cleaner races us
    except BaseException as exc:
        _remove_temp(tmp_dir)
        if not isinstance(exc, Exception) or isinstance(exc, SaveError):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SaveError(f"saving {str(path)!r} failed, the previous file is unchanged: {reason}") from exc
    finally:
        if lock is not None:
            os.close(lock)
    return path


def stale_temp_files(folder: str | Path) -> list[Path]:
    """Temporary files or folders a killed save left behind in ``folder`` (or a running save uses)."""
    return sorted(p for p in Path(folder).glob(f".*{TEMP_SUFFIX}") if _TEMP_NAME.match(p.name))


def _in_use(entry: Path) -> bool:
    """Whether a live save still holds ``entry``'s lock (POSIX), or may (elsewhere: it is newer than us)."""
    if fcntl is None:
        return entry.lstat().st_mtime >= _PROCESS_START
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(entry, flags)
    except OSError:
        return True  # cannot check it, so do not touch it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock
    return False


def _clean_for(path: Path) -> None:
    """Before saving ``path``, remove what an earlier, killed save of the same file left."""
    for entry in clean_stale_temp_files(path.parent if str(path.parent) else ".", target=path.name):
        log.info("removed %s, left by a save that did not finish", entry)


def clean_stale_temp_files(folder: str | Path, *, min_age_s: float = 0.0, target: str | None = None) -> list[Path]:
    """Remove the temporaries that killed saves left in ``folder``; return what was removed.

    Call it at start-up for the folders paramedit saves into. Only entries named
    ``.<name>.<random>.paramedit-tmp`` are considered, never through a symbolic link, and only
    when no running save holds them (POSIX advisory lock; where there are no such locks, only
    when they are older than this process) and they are at least ``min_age_s`` seconds old.
    ``target`` (a file name) limits it to that file's temporaries; ``atomic_write`` cleans those
    before each save.
    A folder that cannot be listed is skipped: cleaning up never raises.
    """
    removed: list[Path] = []
    try:
        candidates = stale_temp_files(folder)
        if target is not None:
            own = re.compile(re.escape(f".{target}.") + r"[A-Za-z0-9_]{6,}" + re.escape(TEMP_SUFFIX))
            candidates = [p for p in candidates if own.fullmatch(p.name)]
    except OSError:
        return removed
    now = time.time()
    for entry in candidates:
        try:
            if now - entry.lstat().st_mtime < min_age_s or _in_use(entry):
                continue
        except OSError:
            continue
        if _remove_temp(entry):
            removed.append(entry)
    return removed


def unsavable_reason(name: str, tensor: torch.Tensor, fmt: str) -> str | None:
    """Why ``tensor`` cannot be written in ``fmt``, or None."""
    if tensor.device.type == "meta":
        return f"{name} is a meta tensor: it has no values to save"
    if fmt != "safetensors":
        return None
    if tensor.is_nested or tensor.layout != torch.strided:
        return f"{name} is not a dense tensor ({str(tensor.layout).removeprefix('torch.')}); safetensors stores only dense ones"
    if tensor.is_quantized or tensor.dtype == torch.complex32:
        return f"{name} is {str(tensor.dtype).removeprefix('torch.')}, which safetensors cannot store"
    return None


def save_tensors(
    tensors: Mapping[str, torch.Tensor],
    path: str | Path,
    *,
    aliases: Mapping[str, str] | None = None,
    fmt: str | None = None,
    wrap: Callable[[dict[str, torch.Tensor]], object] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Save a flat name -> tensor dict as ``.safetensors`` or a ``torch.save`` file.

    ``tensors`` holds canonical names only; ``aliases`` maps each tied alias to its canonical
    name. A torch file stores the alias as the same tensor (torch keeps the sharing); a
    safetensors file stores it once and lists the alias in its metadata, where paramedit (and
    the model's own tying) restores it. Tensors the format cannot hold are refused, by name,
    before anything is written. ``wrap`` turns the flat dict into the object a torch file holds
    (a checkpoint's own containers); safetensors files are always flat, and keep ``metadata``
    (the source file's header metadata, strings only).
    """
    path = Path(path)
    if fmt is None and path.suffix.lower() not in (*TORCH_SUFFIXES, ".safetensors"):
        raise SaveError(f"cannot tell which format to save {str(path)!r} in from its name: end it in .safetensors, "
                        f"or {', '.join(TORCH_SUFFIXES)} for a torch file (a folder must exist to save a sharded set)")
    fmt = fmt or ("safetensors" if path.suffix.lower() == ".safetensors" else "torch")
    if fmt not in ("safetensors", "torch"):
        raise SaveError(f"unknown save format {fmt!r}; use .safetensors or .pt")
    problems = [reason for name, t in tensors.items() if (reason := unsavable_reason(name, t, fmt))]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        hint = "; save as .pt instead" if fmt == "safetensors" and not any("meta" in p for p in problems) else ""
        raise SaveError(f"cannot save {str(path)!r}: {'; '.join(problems[:3])}{more}{hint}")
    aliases = dict(aliases or {})
    try:
        cpu = {name: t.detach().to("cpu") for name, t in tensors.items()}
    except (RuntimeError, NotImplementedError) as exc:
        raise SaveError(f"cannot save {str(path)!r}: copying the tensors to the CPU failed: {exc}") from exc
    if fmt == "safetensors":
        from safetensors.torch import save_file

        contiguous = {name: t.contiguous() for name, t in cpu.items()}
        # safetensors refuses tensors that share memory; a view of another tensor gets its own copy.
        seen: dict[tuple[int, int], str] = {}
        for name, t in contiguous.items():
            key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            if t.numel() and key in seen:
                contiguous[name] = t.clone()
            seen[key] = name
        header = {str(k): str(v) for k, v in (metadata or {}).items()}
        header.setdefault("format", "pt")
        header.pop(ALIASES_METADATA_KEY, None)
        if aliases:
            header[ALIASES_METADATA_KEY] = json.dumps(aliases, sort_keys=True)
        return atomic_write(path, lambda tmp: save_file(contiguous, str(tmp), metadata=header))
    state = dict(cpu)
    for alias, canonical in aliases.items():
        state[alias] = cpu[canonical]
    obj = wrap(state) if wrap is not None else state
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def write_json(path: str | Path, data: object) -> Path:
    """Write JSON atomically (edit logs, reports)."""
    text = json.dumps(data, indent=2, allow_nan=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
