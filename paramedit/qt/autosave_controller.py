"""Crash safety for the window: autosave the edit log, offer to replay it after a crash.

Core's :class:`~paramedit.core.editing.autosave.EditAutosave` rewrites a small JSON file after every
commit, undo, redo and save. A clean close removes it; a crash leaves it, and the next start
offers to reopen the same model and checkpoint and replay the edits as one undoable step.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QStandardPaths

from paramedit.core.checkpoints.saving import clean_stale_temp_files
from paramedit.core.editing.autosave import (
    EditAutosave,
    default_autosave_path,
    find_autosaves,
    load_autosave,
    replay_autosave,
)
from paramedit.core.errors import ParameditError
from paramedit.core.session import Session
from paramedit.qt import prompts, settings
from paramedit.qt.load_request import LoadRequest

if TYPE_CHECKING:
    from paramedit.qt.main_window import MainWindow

log = logging.getLogger(__name__)


def autosave_folder() -> Path:
    """Next to the settings file in tests; the platform's app-data folder otherwise."""
    if settings.settings_file() is not None:
        return Path(settings.settings_file()).parent / "autosave"
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".paramedit") / "autosave"


class AutosaveController(QObject):
    """Keeps one autosave for the window's session and replays one after a crash."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._autosave: EditAutosave | None = None
        self._replay: Path | None = None
        window.sessionOpened.connect(self._session_opened)

    @property
    def path(self) -> Path | None:
        return self._autosave.path if self._autosave is not None else None

    def attach(self, session: Session | None, request: LoadRequest | None) -> None:
        """Start autosaving ``session`` (closing the previous autosave, which was dealt with)."""
        self.detach(clean=True)
        if session is None:
            return
        folder = autosave_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("autosave disabled: cannot create %s: %s", folder, exc)
            return
        extra = {"model_kwargs": dict(request.model_kwargs)} if request is not None else {}
        self._autosave = EditAutosave(session, default_autosave_path(folder, session), extra_context=extra)

    def detach(self, *, clean: bool) -> None:
        """Stop autosaving; a clean end (saved, or the user discarded) removes the file."""
        if self._autosave is not None:
            self._autosave.close(remove=clean)
            self._autosave = None

    def offer_recovery(self) -> bool:
        """At start: if a previous run left an autosave, ask, then reopen and replay it."""
        for folder in {str(autosave_folder()), settings.last_folder()}:
            clean_stale_temp_files(folder)  # leftovers of a save that was killed
        found = find_autosaves(autosave_folder())
        if not found:
            return False
        newest = found[0]
        try:
            context, edits = load_autosave(newest)
        except ParameditError as exc:
            log.warning("ignoring unreadable autosave %s: %s", newest, exc.message)
            return False
        if not edits or not prompts.ask_recover_autosave(self._window, str(newest), context, len(edits)):
            return False
        request = LoadRequest(context.get("model_spec"), context.get("checkpoint"),
                              device=str(context.get("device") or "cpu"),
                              model_kwargs=dict(context.get("model_kwargs") or {}),
                              container_key=context.get("container_key"))
        self._replay = newest
        return self._window.files.open_request(request)

    def _session_opened(self) -> None:
        path, self._replay = self._replay, None
        session = self._window.session
        if path is None or session is None:
            return
        try:
            replay_autosave(session, path)
        except ParameditError as exc:
            self._window.job_failed("Recovering edits failed", exc)
            return
        path.unlink(missing_ok=True)
        self._window.show_message(f"recovered the edits of {path.name}: review them, then save")
