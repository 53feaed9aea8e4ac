"""Crash safety for the window: autosave the edit log, offer to replay it after a crash.

Core's :class:`~paramedit.core.editing.autosave.EditAutosave` rewrites a small JSON file after every
commit, undo, redo, stage and save. A clean close removes it; a crash leaves it, and the next
start asks: Recover (reopen the same model and checkpoint, replay each commit as its own undo
step and stage the staged edits again), Discard (delete the autosave) or Later (keep it, ask
again next time). What a recovery restored stays on screen in a note until it is closed.
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
    load_autosave_groups,
    recover_autosave,
)
from paramedit.core.errors import ParameditError
from paramedit.core.session import Session
from paramedit.qt import prompts, settings
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.notice_banner_widget import NoticeBannerWidget
from paramedit.qt.recovery_text import restored_message

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
        self._replay: tuple[Path, dict] | None = None  # (autosave, its context) for the session being opened
        #: Says what the last recovery restored, until closed or another model is opened.
        self.notice = NoticeBannerWidget(window)
        window.sessionOpened.connect(self._session_opened)
        # An open that never happens must not leave the replay waiting for the next one.
        window.files.loader.failed.connect(lambda *_a: self._forget_replay())
        window.files.loader.cancelled.connect(self._forget_replay)

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
        """At start: if a previous run left an autosave, ask Recover / Discard / Later. True when
        the autosave's model is being reopened (its work is replayed once it is open)."""
        for folder in {str(autosave_folder()), settings.last_folder()}:
            clean_stale_temp_files(folder)  # leftovers of a save that was killed
        found = self._newest_with_work()
        if found is None:
            return False
        path, context, commits, staged = found
        choice = prompts.ask_autosave_recovery(self._window, str(path), context, commits, staged)
        if choice is prompts.RecoveryChoice.DISCARD:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove the autosave %s: %s", path, exc)
            self._window.show_message(f"discarded the autosave {path.name}")
            return False
        if choice is not prompts.RecoveryChoice.RECOVER:
            return False  # Later: the file stays, and the next start asks again
        request = LoadRequest(context.get("model_spec"), context.get("checkpoint"),
                              device=str(context.get("device") or "cpu"),
                              model_kwargs=dict(context.get("model_kwargs") or {}),
                              container_key=context.get("container_key"))
        self._replay = (path, context)
        if not self._window.files.open_request(request):
            self._replay = None
            return False
        return True

    @staticmethod
    def _newest_with_work() -> tuple[Path, dict, int, int] | None:
        """(path, context, commits, staged edits) of the newest readable autosave with work in it."""
        for path in find_autosaves(autosave_folder()):
            try:
                context, groups, staged = load_autosave_groups(path)
            except (ParameditError, OSError, ValueError) as exc:
                log.warning("ignoring unreadable autosave %s: %s", path, exc)
                continue
            if groups or staged:
                return path, context, len(groups), len(staged)
        return None

    def _forget_replay(self) -> None:
        self._replay = None

    def _session_opened(self) -> None:
        replay, self._replay = self._replay, None
        session = self._window.session
        if replay is None or session is None:
            self.notice.clear()  # another model: the note was about the previous one
            return
        path, context = replay
        try:
            recovered = recover_autosave(session, path)
        except Exception as exc:  # all or nothing: the session is as it was opened, the file is kept
            self._window.job_failed("Recovering edits failed", exc)
            return
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove the recovered autosave %s: %s", path, exc)
        message = restored_message(recovered, context)
        self.notice.show_notice(message)
        self._window.show_message(message)
