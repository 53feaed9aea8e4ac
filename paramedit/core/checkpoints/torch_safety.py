"""What the installed torch can be trusted with when it reads a pickled checkpoint.

``torch.load(weights_only=True)`` is paramedit's promise that a downloaded ``.pt`` runs no code,
but the promise is only as good as torch's restricted unpickler. Known bypasses:

* CVE-2025-32434 (GHSA-53q9-r3pm-6pq6): on torch < 2.6.0 a crafted file runs code even with
  ``weights_only=True``. Pickles are refused on such a torch unless the user trusts the file.
* CVE-2026-24747 (GHSA-63cw-57p8-fm3p): on torch < 2.10.0 a crafted file can corrupt memory in
  the weights-only unpickler (SETITEM(S) on non-dicts, storages smaller than they claim). Loads
  go ahead with a loud warning; :func:`verify_zip_storage_records` also checks the storage
  sizes itself, because torch's memory-mapped loader does not.

Safetensors files involve no pickle and are never affected. Nothing here imports or runs what a
checkpoint names: pickles are only decoded with :mod:`pickletools`.
"""

from __future__ import annotations

import io
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from paramedit.core.errors import CheckpointError, UntrustedCheckpointError

__all__ = [
    "KNOWN_ADVISORIES",
    "Advisory",
    "parse_torch_version",
    "require_safe_torch_for_pickles",
    "verify_zip_storage_records",
    "weights_only_is_safe",
]


@dataclass(frozen=True)
class Advisory:
    """A published flaw in ``torch.load(weights_only=True)``, fixed in ``fixed_in``."""

    cve: str
    ghsa: str
    fixed_in: tuple[int, int, int]
    refuse: bool  # refuse untrusted pickles on an affected torch (else: load, with a warning)
    summary: str


KNOWN_ADVISORIES = (
    Advisory("CVE-2025-32434", "GHSA-53q9-r3pm-6pq6", (2, 6, 0), True,
             "a crafted file can run code even with torch.load(weights_only=True)"),
    Advisory("CVE-2026-24747", "GHSA-63cw-57p8-fm3p", (2, 10, 0), False,
             "a crafted file can corrupt memory in torch's weights-only unpickler"),
)  # fmt: skip

_VERSION = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?([^+]*)")


def parse_torch_version(text: str) -> tuple[tuple[int, int, int], bool] | None:
    """``"2.6.0+cu124"`` -> ``((2, 6, 0), False)``; the flag is True for pre-releases (a, b, rc, dev).

    A pre-release of a version may predate the fix that version ships, so callers treat it as
    the version before. Returns None for text that is not a version.
    """
    match = _VERSION.match(str(text))
    if match is None:
        return None
    major, minor, patch, rest = match.groups()
    prerelease = bool(re.match(r"[.\-_]?(a|b|c|rc|alpha|beta|pre|preview|dev)", rest.strip().lower()))
    return (int(major), int(minor), int(patch or 0)), prerelease


def _affected(version: tuple[tuple[int, int, int], bool], advisory: Advisory) -> bool:
    number, prerelease = version
    return number < advisory.fixed_in or (prerelease and number == advisory.fixed_in)


def weights_only_is_safe(version: str | None = None) -> tuple[bool, str]:
    """Whether ``torch.load(weights_only=True)`` of the installed torch (or ``version``) is trusted.

    Returns ``(False, reason)`` when a known bypass lets a crafted pickle run code; ``(True, "")``
    when no advisory is known; ``(True, warning)`` when only lesser advisories apply (say it
    loudly, but load).
    """
    text = str(torch.__version__ if version is None else version)
    parsed = parse_torch_version(text)
    if parsed is None:
        return False, (f"cannot tell which torch this is (version {text!r}), so paramedit cannot rule out the "
                       f"known weights_only bypasses ({', '.join(a.cve for a in KNOWN_ADVISORIES)})")  # fmt: skip
    hits = [a for a in KNOWN_ADVISORIES if _affected(parsed, a)]
    pre = " (a pre-release of a fixed version may predate the fix)" if parsed[1] else ""
    refused = [a for a in hits if a.refuse]
    if refused:
        first = refused[0]
        fixed = ".".join(map(str, max(a.fixed_in for a in hits)))
        return False, (f"torch {text} has a known weights_only bypass ({first.cve}: {first.summary}){pre}; "
                       f"upgrade to torch {fixed} or later")  # fmt: skip
    if hits:
        names = "; ".join(f"{a.cve}: {a.summary}" for a in hits)
        fixed = ".".join(map(str, max(a.fixed_in for a in hits)))
        return True, f"torch {text} has known flaws in its safe loader ({names}){pre}; upgrade to torch {fixed} or later"
    return True, ""


def require_safe_torch_for_pickles(path: str | Path | None = None, *, trusted: bool = False) -> str | None:
    """Call before unpickling a checkpoint; refuse when this torch's safe loader is known bypassable.

    Raises :class:`UntrustedCheckpointError` (a :class:`CheckpointError`, with no globals) naming
    the CVE unless ``trusted``. Returns a warning for the load notes when there is something to
    say (a lesser advisory, or loading a trusted file on an affected torch), else None.
    """
    safe, reason = weights_only_is_safe()
    where = f"{path} is a pickled checkpoint" if path is not None else "this is a pickled checkpoint"
    if not safe:
        if trusted:
            return f"loaded although {reason}, because the file was trusted"
        raise UntrustedCheckpointError(
            f"{where}, and {reason}. Reading it could run code from the file, so paramedit did not "
            "load it. Safetensors files are not affected. Load it only if you trust where it came "
            "from: pass --trust on the command line (trust=True in Python).",
            globals=[],
        )
    return reason or None


# ---------------------------------------------------------------- storage records of a zip checkpoint

_MARK = object()
_OPAQUE = object()
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
                         "SHORT_BINSTRING"})  # fmt: skip
_INT_OPS = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"})
_PUSH_OPAQUE = frozenset({"EMPTY_DICT", "EMPTY_LIST", "EMPTY_SET", "NONE", "NEWTRUE", "NEWFALSE", "BINFLOAT",
                          "FLOAT", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"})  # fmt: skip
_MAX_PICKLE_BYTES = 1 << 30


def _pop_mark(stack: list) -> list:
    at = len(stack) - 1 - stack[::-1].index(_MARK)
    items = stack[at + 1 :]
    del stack[at:]
    return items


def _storage_declarations(data: bytes) -> list[tuple[str, str, int]] | None:
    """(storage type name, record key, numel) of each storage a torch ``data.pkl`` refers to.

    A static reading of the opcodes (a small stack machine over the ones ``torch.save`` emits);
    None when the pickle uses anything else, in which case nothing is claimed.
    """
    stack: list = []
    memo: dict[int, object] = {}
    found: list[tuple[str, str, int]] = []
    pops = {"SETITEM": 2, "APPEND": 1, "BUILD": 1, "POP": 1}
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(data)):
            name = opcode.name
            if name in ("PROTO", "FRAME", "STOP"):
                continue
            if name == "MARK":
                stack.append(_MARK)
            elif name in _STRING_OPS:
                stack.append(arg if isinstance(arg, str) else bytes(arg).decode("latin-1"))
            elif name in _INT_OPS:
                stack.append(int(arg))
            elif name == "GLOBAL":
                module, _, qualname = str(arg).partition(" ")
                stack.append(("global", module, qualname))
            elif name == "STACK_GLOBAL":
                qualname, module = stack.pop(), stack.pop()
                stack.append(("global", module, qualname))
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                stack.append(memo.get(int(arg), _OPAQUE))
            elif name == "TUPLE":
                stack.append(tuple(_pop_mark(stack)))
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(name[-1])
                items = stack[-k:]
                del stack[-k:]
                stack.append(tuple(items))
            elif name == "BINPERSID":
                pid = stack.pop()
                if (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], tuple)
                        and isinstance(pid[2], str) and isinstance(pid[4], int)):  # fmt: skip
                    found.append((pid[1][-1], pid[2], pid[4]))
                stack.append(_OPAQUE)
            elif name in _PUSH_OPAQUE:
                stack.append(_OPAQUE)
            elif name in ("DICT", "LIST", "FROZENSET"):
                _pop_mark(stack)
                stack.append(_OPAQUE)
            elif name in ("SETITEMS", "APPENDS", "ADDITEMS", "POP_MARK"):
                _pop_mark(stack)
            elif name in pops:
                del stack[-pops[name] :]
            elif name in ("REDUCE", "NEWOBJ"):
                del stack[-2:]
                stack.append(_OPAQUE)
            elif name == "DUP":
                stack.append(stack[-1])
            else:
                return None
    except (ValueError, IndexError, TypeError):
        return None  # damaged: torch's own reader reports it
    return found


def _element_size(storage_type: str) -> int | None:
    if storage_type == "UntypedStorage":
        return 1
    if not storage_type.endswith("Storage"):
        return None
    with warnings.catch_warnings():  # the legacy typed-storage classes warn that they are deprecated
        warnings.simplefilter("ignore")
        dtype = getattr(getattr(torch, storage_type, None), "dtype", None)
    return torch.empty((), dtype=dtype).element_size() if isinstance(dtype, torch.dtype) else None


def verify_zip_storage_records(path: str | Path) -> bool:
    """Check that every storage a zip-format torch checkpoint declares is really in the file.

    torch's memory-mapped loader (``mmap=True``) trusts the sizes in ``data.pkl``: a storage
    whose record is shorter than declared silently reads the bytes that follow it in the file
    (other records, the zip directory) as weights. Raises :class:`CheckpointError` naming the
    first missing or short record. Returns True when every record is stored uncompressed (it
    can be memory-mapped), False when one is compressed (read it without ``mmap``). When
    ``data.pkl`` cannot be read statically, nothing is claimed and True is returned.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
            if not pickles or archive.getinfo(pickles[0]).file_size > _MAX_PICKLE_BYTES:
                return True
            prefix = pickles[0].split("/")[0]
            declared = _storage_declarations(archive.read(pickles[0]))
            if declared is None:
                return True
            records = {info.filename: info for info in archive.infolist()}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return True  # the loader's own error says it better
    mappable = True
    for storage_type, key, numel in declared:
        size = _element_size(storage_type)
        record = records.get(f"{prefix}/data/{key}")
        if record is None:
            raise CheckpointError(
                f"{path} is damaged: its pickle refers to a storage data/{key} that is not in the archive"
            )
        if size is not None and record.file_size < numel * size:
            raise CheckpointError(
                f"{path} is damaged: storage data/{key} should hold {numel * size} bytes ({numel} × "
                f"{storage_type.removesuffix('Storage') or 'byte'}) but the file has only {record.file_size}; "
                "the file is truncated or was tampered with"
            )
        mappable = mappable and record.compress_type == zipfile.ZIP_STORED
    return mappable
