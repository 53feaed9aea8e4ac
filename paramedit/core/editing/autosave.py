"""Optional autosave of the edit log, so the work of a crashed session can be replayed.

:class:`EditAutosave` listens to a session's ``committed``, ``undone``, ``redone`` and ``saved``
events and each time atomically rewrites one JSON file: the session's edit log
(``paramedit.edits`` version 1, the same document ``paramedit apply`` replays) plus what is
needed to reopen the session (model spec, checkpoint, device, when). After a crash,
:func:`find_autosaves` lists what is left, :func:`load_autosave` reads one, and
:func:`replay_autosave` applies it to a freshly opened session.

An autosave never grants trust: a pickled checkpoint that needed ``--trust`` still needs the
user's decision when it is reopened, and a model spec in an autosave is only imported when the
user opens it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paramedit.core.checkpoints.saving import write_json
from paramedit.core.editing.edits import Edit, edit_log, parse_edit_log
from paramedit.core.errors import EditError, ParameditError

if TYPE_CHECKING:
    from paramedit.core.session import IdentityCheck, Session

__all__ = [
    "AUTOSAVE_FORMAT",
    "AUTOSAVE_SUFFIX",
    "AUTOSAVE_VERSION",
    "EditAutosave",
    "Recovered",
    "default_autosave_path",
    "find_autosaves",
    "load_autosave",
    "load_autosave_groups",
    "recover_autosave",
    "replay_autosave",
]

log = logging.getLogger(__name__)

AUTOSAVE_FORMAT = "paramedit.autosave"
AUTOSAVE_VERSION = 1
AUTOSAVE_SUFFIX = ".paramedit-autosave.json"
EVENTS = ("committed", "undone", "redone", "saved", "staged", "discarded")
_MAX_AUTOSAVE_BYTES = 1 << 30


def default_autosave_path(folder: str | Path, session: Session) -> Path:
    """``folder/<checkpoint or model name>.<time>.<pid>.paramedit-autosave.json``."""
    if session.checkpoint is not None:
        stem = session.checkpoint.path.name
    elif session.spec:
        stem = session.spec.rpartition(":")[2] or "model"
    else:
        stem = type(session.model).__name__ if session.model is not None else "session"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(folder) / f"{stem}.{stamp}.{os.getpid()}{AUTOSAVE_SUFFIX}"


class EditAutosave:
    """Rewrite ``path`` with the session's edit log and context after every change.

    ``extra_context`` is added to the context (the GUI passes ``model_kwargs``, for example).
    A failed write is logged and kept in :attr:`last_error`; it never interrupts editing.
    """

    def __init__(
        self,
        session: Session,
        path: str | Path,
        *,
        extra_context: Mapping[str, Any] | None = None,
    ) -> None:
        self.session = session
        self.path = Path(path)
        self.extra_context = dict(extra_context or {})
        self.saved_to: Path | None = None
        self.last_error: ParameditError | None = None
        self.writes = 0
        self._listeners = {event: self._listener(event) for event in EVENTS}
        for event, listener in self._listeners.items():
            session.events.connect(event, listener)

    def _listener(self, event: str):
        def on_event(**payload: Any) -> None:
            if event == "saved" and payload.get("path") is not None:
                self.saved_to = Path(payload["path"])
            self.write(event)

        return on_event

    def context(self, event: str = "manual") -> dict[str, Any]:
        """What a replay needs to reopen the session, and when this was written."""
        s = self.session
        ckpt = s.checkpoint
        return {
            "model_spec": s.spec,
            "checkpoint": str(ckpt.path.resolve()) if ckpt is not None else None,
            "checkpoint_format": ckpt.format if ckpt is not None else None,
            "container_key": ckpt.container_key if ckpt is not None else None,
            "trusted": bool(ckpt.trusted) if ckpt is not None else False,
            "device": str(s.device),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "event": event,
            "pid": os.getpid(),
            "saved_to": str(self.saved_to) if self.saved_to is not None else None,
            "unsaved": s.has_unsaved_changes,
            **self.extra_context,
        }

    def document(self, event: str = "manual") -> dict[str, Any]:
        """The JSON document written to :attr:`path`."""
        edits = self.session.edit_log()
        # The flat log (what older versions read) plus where each commit ends and the staged
        # edits, so a recovery gives back as many undo steps as there were, and the staged work.
        commits = [len(r.edits) for r in self.session.history.records]
        staged = edit_log(self.session.staged)["edits"]
        for item in [*edits["edits"], *staged]:
            source = item.get("source")
            if isinstance(source, str) and not Path(source).is_absolute():
                # The session resolved it against the working folder; a replay may run elsewhere.
                item["source"] = str(Path(source).expanduser().resolve())
        return {"format": AUTOSAVE_FORMAT, "version": AUTOSAVE_VERSION, "context": self.context(event),
                "edit_log": edits, "commit_sizes": commits, "staged": staged}  # fmt: skip

    def write(self, event: str = "manual") -> Path | None:
        """Write the autosave now; returns its path, or None if writing failed (see :attr:`last_error`)."""
        try:
            write_json(self.path, self.document(event))
        except ParameditError as exc:
            self.last_error = exc
            log.warning("autosave to %s failed: %s", self.path, exc.message)
            return None
        self.last_error = None
        self.writes += 1
        return self.path

    def close(self, *, remove: bool = False) -> None:
        """Stop listening; with ``remove``, delete the file (the session ended cleanly)."""
        for event, listener in self._listeners.items():
            self.session.events.disconnect(event, listener)
        self._listeners = {}
        if remove:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove the autosave %s: %s", self.path, exc)


def find_autosaves(folder: str | Path) -> list[Path]:
    """Autosave files in ``folder`` left by a paramedit that is no longer running, newest first
    (an unreadable folder gives []). The autosave of a window still open in another process is
    its work in progress, not a crash: offering to recover or discard it would be wrong."""
    try:
        found = [p for p in Path(folder).glob(f"*{AUTOSAVE_SUFFIX}") if p.is_file() and not p.is_symlink()]
        found = [p for p in found if not _owner_running(p)]
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []


def _owner_running(path: Path) -> bool:
    """Whether another process whose id the file's name carries (``….<pid>.paramedit-autosave.json``)
    runs now (a reused id only postpones the question; this process's own files are its to judge)."""
    pid_text = path.name[: -len(AUTOSAVE_SUFFIX)].rpartition(".")[2]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, someone else's
    return True


@dataclass
class Recovered:
    """What a recovery gave back."""

    commits: int
    edits: int
    staged: int

    def describe(self) -> str:
        staged = f", and {self.staged} staged edit(s) not yet committed" if self.staged else ""
        return f"recovered {self.edits} edit(s) as {self.commits} commit(s) you can undo one by one{staged}"


def load_autosave_groups(path: str | Path) -> tuple[dict[str, Any], list[list[Edit]], list[Edit]]:
    """Read an autosave: ``(context, commits as groups of edits, staged edits)``. An autosave
    written before commit boundaries were kept gives its edits as one commit."""
    context, edits = load_autosave(path)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    sizes = data.get("commit_sizes")
    if not (isinstance(sizes, list) and all(isinstance(n, int) and n > 0 for n in sizes) and sum(sizes) == len(edits)):
        sizes = [len(edits)] if edits else []
    groups, start = [], 0
    for n in sizes:
        groups.append(edits[start:start + n])
        start += n
    staged_raw = data.get("staged") or []
    staged = parse_edit_log({"format": "paramedit.edits", "version": 1, "edits": staged_raw}) if staged_raw else []
    return context, groups, staged


def recover_autosave(session: Session, path: str | Path, *, check_checkpoint: bool = True) -> Recovered:
    """Replay an autosave commit by commit (as many undo steps as there were) and stage its staged
    edits again. All or nothing: if one edit is bad, the session is left as it was."""
    context, groups, staged = load_autosave_groups(path)
    _check_same_checkpoint(session, context, path, check_checkpoint)
    done = 0
    try:
        for group in groups:
            session.apply_edits(group)
            done += 1
        for edit in staged:
            session.stage_edit(edit)
    except BaseException:
        session.discard()
        for _ in range(done):
            session.undo()
        raise
    return Recovered(len(groups), sum(len(g) for g in groups), len(staged))


def _check_same_checkpoint(session: Session, context: dict, path: str | Path, check: bool) -> None:
    if not check:
        return
    recorded = context.get("checkpoint")
    current = str(session.checkpoint.path.resolve()) if session.checkpoint is not None else None
    if recorded != current:
        raise EditError(f"the autosave {str(path)!r} was made on checkpoint {recorded!r}, but this session has "
                        f"{current!r}")


def load_autosave(path: str | Path) -> tuple[dict[str, Any], list[Edit]]:
    """Read an autosave: ``(context, edits)``. Raises :class:`EditError` for anything else."""
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_AUTOSAVE_BYTES:
            raise EditError(f"{str(path)!r} is too large to be a paramedit autosave")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EditError(f"autosave {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EditError(f"autosave {str(path)!r} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != AUTOSAVE_FORMAT:
        raise EditError(f"{str(path)!r} is not a paramedit autosave (expected \"format\": \"{AUTOSAVE_FORMAT}\")")
    if data.get("version") != AUTOSAVE_VERSION:
        raise EditError(f"autosave version {data.get('version')!r} is not supported (this paramedit reads "
                        f"{AUTOSAVE_VERSION})")  # fmt: skip
    context = data.get("context")
    if not isinstance(context, dict):
        raise EditError(f"autosave {str(path)!r} has no 'context' object")
    return context, parse_edit_log(data.get("edit_log"))


def replay_autosave(session: Session, path: str | Path, *, check_checkpoint: bool = True) -> list[IdentityCheck]:
    """Apply an autosave's edits to ``session`` as one undoable step; nothing is written if one is bad.

    With ``check_checkpoint`` the session must have the checkpoint the autosave was made on.
    """
    context, edits = load_autosave(path)
    _check_same_checkpoint(session, context, path, check_checkpoint)
    return session.apply_edits(edits)
