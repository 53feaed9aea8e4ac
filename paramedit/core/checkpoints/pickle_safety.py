"""Static inspection of pickles: which globals a checkpoint asks for, without running it.

``torch.load(..., weights_only=True)`` refuses any pickle that names a global outside torch's
allowlist. To tell the user *why* a file was refused we list those globals by reading the pickle
opcodes with :mod:`pickletools`, which decodes but never executes. Nothing here imports or calls
what the pickle names.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickletools
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import torch

from paramedit.core.errors import CheckpointError

__all__ = [
    "LEGACY_TORCH_MAGIC",
    "allowed_globals",
    "pickle_globals",
    "read_first_pickle_value",
    "unsafe_globals_in_legacy_or_pickle",
    "unsafe_globals_in_pickle_stream",
    "unsafe_globals_in_zip",
]

# The first pickle of a legacy (non-zip) torch.save file is this integer.
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C

# A legacy file is: magic number, protocol version, sys info, the object, storage keys, raw data.
# Only the first four are pickles that can name globals worth reporting.
_LEGACY_PICKLES = 4
# data.pkl holds structure only (tensor bytes are separate records); refuse to inflate a zip bomb.
_MAX_PICKLE_BYTES = 1 << 30

_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
# Ops that do not push a value; everything else is treated as pushing a non-string.
_NO_PUSH_OPS = frozenset(
    {"PROTO", "FRAME", "STOP", "MEMOIZE", "MARK", "POP", "POP_MARK", "SETITEM", "SETITEMS", "APPEND",
     "APPENDS", "ADDITEMS", "BUILD"}
    | _PUT_OPS
)


def _fix_py2_name(module: str, name: str) -> str:
    # Protocol-2 pickles (torch.save's default) spell builtins the Python 2 way; torch maps them
    # back before checking its allowlist, so do the same.
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def pickle_globals(stream: IO[bytes]) -> list[str]:
    """Return the ``module.name`` globals one pickle in ``stream`` refers to, in order, unique.

    Reads exactly one pickle (up to its STOP opcode) and leaves ``stream`` just after it.
    ``STACK_GLOBAL`` (protocol 4+) takes its names from the stack; they are tracked through the
    memo as far as a static reading allows, and reported as ``<unknown>.<unknown>`` otherwise.
    Raises ``ValueError`` on a damaged pickle.
    """
    found: dict[str, None] = {}
    stack_strings: list[str | None] = []
    memo: dict[int, str | None] = {}
    for opcode, arg, _pos in pickletools.genops(stream):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            module, _, qualname = str(arg).partition(" ")
            found[_fix_py2_name(module, qualname)] = None
        elif name == "STACK_GLOBAL":
            module_s = stack_strings[-2] if len(stack_strings) >= 2 else None
            name_s = stack_strings[-1] if stack_strings else None
            found[f"{module_s or '<unknown>'}.{name_s or '<unknown>'}"] = None
        if name in _STRING_OPS:
            stack_strings.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
        elif name in _GET_OPS:
            stack_strings.append(memo.get(int(arg)))
        elif name in _PUT_OPS:
            memo[int(arg)] = stack_strings[-1] if stack_strings else None
        elif name == "MEMOIZE":
            memo[len(memo)] = stack_strings[-1] if stack_strings else None
        elif name not in _NO_PUSH_OPS:
            stack_strings.append(None)
        # Only the last two pushes matter for STACK_GLOBAL; keep the list short.
        if len(stack_strings) > 8:
            del stack_strings[:-2]
    return list(found)


def read_first_pickle_value(head: bytes) -> tuple[bool, object | None]:
    """Statically decode the first pickle in ``head``, looking for the legacy torch magic number.

    Returns ``(complete, value)``: ``complete`` is False when ``head`` ends before the pickle's
    STOP; ``value`` is the integer the pickle holds, or None when it holds anything else. No
    object is constructed.
    """
    value: object | None = None
    simple = True
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(head)):
            if opcode.name in ("PROTO", "FRAME", "STOP"):
                continue
            if simple and value is None and opcode.name in ("LONG1", "LONG4", "INT", "LONG", "BININT", "BININT1",
                                                            "BININT2"):
                value = arg
            else:
                simple = False
    except ValueError:
        return False, value if simple else None
    return True, value if simple else None


def allowed_globals() -> frozenset[str]:
    """The globals ``torch.load(weights_only=True)`` accepts here (torch's defaults + user's)."""
    names: set[str] = set()
    try:
        from torch import _weights_only_unpickler as wou

        names.update(wou._get_allowed_globals().keys())
        names.update(wou._get_user_allowed_globals().keys())
    except (ImportError, AttributeError):  # pragma: no cover - depends on torch internals
        # Without torch's private table, keep the obvious core; anything else is reported.
        names.update({"collections.OrderedDict", "torch.Size", "torch.device", "torch._utils._rebuild_tensor_v2",
                      "torch._utils._rebuild_parameter", "torch.nn.parameter.Parameter"})
    return frozenset(names)


def _filter(found: Iterable[str]) -> list[str]:
    allowed = allowed_globals()
    return sorted({g for g in found if g not in allowed and not _is_storage_type(g)})


def _is_storage_type(name: str) -> bool:
    # Legacy files name typed storages (torch.FloatStorage, ...); torch allows them all.
    return name.startswith("torch.") and name.endswith("Storage") and name.count(".") == 1


def unsafe_globals_in_pickle_stream(stream: IO[bytes], *, pickles: int = 1) -> list[str]:
    """Globals beyond torch's weights-only allowlist in the next ``pickles`` pickles of ``stream``."""
    found: list[str] = []
    for _ in range(pickles):
        found.extend(pickle_globals(stream))
    return _filter(found)


def unsafe_globals_in_zip(path: Path) -> list[str]:
    """Globals beyond the allowlist in the ``data.pkl`` of a torch zip archive."""
    getter = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if getter is not None:
        try:
            return sorted(set(getter(str(path))))
        except Exception:
            # torch's scanner only knows protocol-2 opcodes; read the pickle ourselves instead.
            pass
    try:
        with zipfile.ZipFile(path) as archive:
            pkl_names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
            if not pkl_names:
                raise CheckpointError(f"{path} is a zip archive without a data.pkl: not a torch.save file")
            if archive.getinfo(pkl_names[0]).file_size > _MAX_PICKLE_BYTES:
                raise CheckpointError(f"{path}: its data.pkl is implausibly large for a checkpoint's pickle")
            data = archive.read(pkl_names[0])
    except (OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} could not be read as a zip archive: {exc}", details=repr(exc)) from exc
    try:
        return unsafe_globals_in_pickle_stream(io.BytesIO(data))
    except ValueError as exc:
        raise CheckpointError(f"the pickle inside {path} is damaged: {exc}", details=repr(exc)) from exc


def unsafe_globals_in_legacy_or_pickle(path: Path, *, legacy: bool) -> list[str]:
    """Globals beyond the allowlist in a legacy torch file (``legacy=True``) or a plain pickle."""
    try:
        with open(path, "rb") as stream:
            return unsafe_globals_in_pickle_stream(stream, pickles=_LEGACY_PICKLES if legacy else 1)
    except OSError as exc:
        raise CheckpointError(f"{path} could not be read: {exc}", details=repr(exc)) from exc
    except ValueError as exc:
        raise CheckpointError(f"the pickle in {path} is damaged or cut short: {exc}", details=repr(exc)) from exc
