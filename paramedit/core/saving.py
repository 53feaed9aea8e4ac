"""Atomic saving: a temporary file in the target folder, fsync, then ``os.replace``.

The old file is never left half-written, and saving over the (possibly memory-mapped) file a
session was loaded from is safe: the mapping keeps the old inode alive until it is released.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from paramedit.core.errors import SaveError

TEMP_SUFFIX = ".paramedit-tmp"
ALIASES_METADATA_KEY = "paramedit.aliases"


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


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp_path)``, then atomically put the result at ``path``.

    Keeps the permissions of an existing target. On any failure the target is untouched and the
    temporary file removed; the error is raised as :class:`SaveError`.
    """
    path = Path(path).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise SaveError(f"cannot save to {str(path)!r}: it is a folder")
    if not folder.is_dir():
        raise SaveError(f"cannot save to {str(path)!r}: folder {str(folder)!r} does not exist")
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else _default_mode()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=folder)
    except OSError as exc:
        raise SaveError(f"cannot save to {str(path)!r}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, SaveError):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SaveError(f"saving {str(path)!r} failed, the previous file is unchanged: {reason}") from exc
    return path


def stale_temp_files(folder: str | Path) -> list[Path]:
    """Temporary files a killed save left behind in ``folder``."""
    return sorted(Path(folder).glob(f".*{TEMP_SUFFIX}"))


def save_tensors(
    tensors: Mapping[str, torch.Tensor],
    path: str | Path,
    *,
    aliases: Mapping[str, str] | None = None,
    fmt: str | None = None,
) -> Path:
    """Save a flat name -> tensor dict as ``.safetensors`` or a ``torch.save`` file.

    ``tensors`` holds canonical names only; ``aliases`` maps each tied alias to its canonical
    name. A torch file stores the alias as the same tensor (torch keeps the sharing); a
    safetensors file stores it once and lists the alias in its metadata, where paramedit (and
    the model's own tying) restores it.
    """
    path = Path(path)
    fmt = fmt or ("safetensors" if path.suffix == ".safetensors" else "torch")
    aliases = dict(aliases or {})
    cpu = {name: t.detach().to("cpu") for name, t in tensors.items()}
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
        metadata = {"format": "pt"}
        if aliases:
            metadata[ALIASES_METADATA_KEY] = json.dumps(aliases, sort_keys=True)
        return atomic_write(path, lambda tmp: save_file(contiguous, str(tmp), metadata=metadata))
    if fmt == "torch":
        state = dict(cpu)
        for alias, canonical in aliases.items():
            state[alias] = cpu[canonical]
        return atomic_write(path, lambda tmp: torch.save(state, tmp))
    raise SaveError(f"unknown save format {fmt!r}; use .safetensors or .pt")


def write_json(path: str | Path, data: object) -> Path:
    """Write JSON atomically (edit logs, reports)."""
    text = json.dumps(data, indent=2, allow_nan=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
