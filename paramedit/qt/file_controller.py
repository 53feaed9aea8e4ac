"""The window's File menu: opening (dialogs, recent files, drops), saving, exporting, and the
"unsaved changes" question that guards every way of losing work."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from paramedit.core.errors import ParameditError, SaveError
from paramedit.core.session import Session
from paramedit.demo import demo_checkpoint, demo_model_spec
from paramedit.qt import prompts
from paramedit.qt.error_dialog import show_error
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.save_defaults import save_default
from paramedit.qt.session_loader import SessionLoader
from paramedit.qt.settings import RecentEntry, add_recent_entry, last_folder, recent_entries, remember_folder

if TYPE_CHECKING:
    from paramedit.qt.main_window import MainWindow


class FileController(QObject):
    """Opens and saves for a :class:`MainWindow`; long work goes through the window's job runner."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.loader = SessionLoader(window.jobs, window)
        self.loader.loaded.connect(self._loaded)
        self.loader.failed.connect(lambda exc, req: window.job_failed(f"Could not open {req.describe()}", exc))
        self.loader.cancelled.connect(lambda: window.show_message("opening cancelled"))
        self.save_path: str | None = None

    @property
    def _settings(self):
        return self.w.settings

    def _device(self) -> str:
        s = self.w.session
        return str(s.device) if s is not None else self.w.acts.device_combo.currentData() or "cpu"

    # ------------------------------------------------------------------ opening
    def open_request(self, request: LoadRequest) -> bool:
        """Open a model and/or checkpoint (asks about unsaved changes first); False if not started."""
        if self.w.jobs.busy:
            self.w.show_message(f"busy: {self.w.jobs.label}")
            return False
        if not self.confirm_discard_changes("opening another model"):
            return False
        return self.loader.load(request)

    def open_demo(self) -> bool:
        return self.open_request(LoadRequest(demo_model_spec(), str(demo_checkpoint()), device=self._device()))

    def open_model_dialog(self) -> None:
        request = prompts.ask_open_model(self.w, last_folder(self._settings))
        if request is not None:
            self.open_request(LoadRequest(request.model, request.checkpoint, self._device(), request.model_kwargs))

    def open_checkpoint_dialog(self) -> None:
        path = prompts.ask_open_checkpoint(self.w, last_folder(self._settings))
        if path:
            self.open_checkpoint_path(path)

    def open_checkpoint_folder_dialog(self) -> None:
        path = prompts.ask_open_checkpoint_folder(self.w, last_folder(self._settings))
        if path:
            self.open_checkpoint_path(path)

    def open_checkpoint_path(self, path: str) -> bool:
        """Open a checkpoint into the current model (rebuilt from its spec, or a copy), or on its own."""
        s, r = self.w.session, self.w.request
        if s is not None and s.has_model:
            # Never load into the live model: a failed load must leave the open session untouched.
            model = r.model if r is not None and r.model else s.spec or copy.deepcopy(s.model)
            kwargs = r.model_kwargs if r is not None else {}
            return self.open_request(LoadRequest(model, path, self._device(), kwargs))  # type: ignore[arg-type]
        return self.open_request(LoadRequest(None, path, self._device()))

    def _loaded(self, session: Session, request: LoadRequest) -> None:
        if isinstance(request.model, str) or request.model is None:
            add_recent_entry(RecentEntry(request.model, request.checkpoint), self._settings)
            self.rebuild_recent_menu()
        if request.checkpoint:
            remember_folder(request.checkpoint, self._settings)
        self.save_path = None
        self.w.set_session(session, request)
        report = session.report
        self.w.show_message(report.summary() if report is not None else f"opened {request.describe()}")

    def rebuild_recent_menu(self) -> None:
        menu = self.w.acts.recent_menu
        menu.clear()
        entries = recent_entries(self._settings)
        for entry in entries:
            menu.addAction(entry.label(), lambda e=entry: self.open_request(
                LoadRequest(e.model, e.checkpoint, self._device())))
        if not entries:
            menu.addAction("(none yet)").setEnabled(False)

    # ------------------------------------------------------------------ saving
    def save(self) -> None:
        if self.save_path:
            self.start_save(self.save_path)
        else:
            self.save_as()

    def save_as(self) -> None:
        path = self._ask_save_path()
        if path:
            self.start_save(path)

    def _ask_save_path(self) -> str | None:
        """Save As offers the format the session was opened from, beside it (see save_defaults)."""
        s = self.w.session
        folder, suggested = save_default(s.checkpoint if s is not None else None, last_folder(self._settings))
        return prompts.ask_save_path(self.w, folder, suggested)

    def start_save(self, path: str) -> None:
        """Save in a worker; the status bar and title say when it is done."""
        s = self.w.session
        if s is None or self.w.jobs.busy:
            return
        allowed = self._save_allowed(s, path)
        if allowed is None:
            return
        if s.staged:
            self.w.show_message(f"{len(s.staged)} staged edit(s) are not committed and are not in the saved file")
        self.w.jobs.run(f"Saving {Path(path).name}", functools.partial(s.save, allow_lost_edits=allowed), path,
                        on_result=self._saved, on_error=lambda exc: self.w.job_failed("Save failed", exc))

    def _save_allowed(self, s: Session, path: str) -> bool | None:
        """Plan the save first: a refusal is an error and a plan with warnings asks. None: do not
        write; else whether the user accepted that edits to tensors the file lacks are not saved."""
        try:
            plan = s.plan_save(path)
        except ParameditError as exc:
            show_error(self.w, "Save failed", exc)
            return None
        if plan.refusal:
            message = plan.refusal
            if "Save As" not in message:
                message += " Use File > Save As… to write another file."
            show_error(self.w, "Cannot save over this file", SaveError(message))
            self.w.show_message(f"not saved: {Path(path).name} cannot be rewritten whole; nothing was written")
            return None
        warnings = plan.warnings()
        if warnings and not prompts.ask_save_despite_warnings(self.w, str(plan.target), warnings):
            self.w.show_message("save cancelled: nothing was written")
            return None
        return bool(plan.lost_edits)  # the user read that they would not be saved, and went on

    def _saved(self, path: Path) -> None:
        self.save_path = str(path)
        remember_folder(path, self._settings)
        self.w.show_message(f"saved {path}")
        self.w.update_title()

    def export_edit_log(self) -> None:
        s = self.w.session
        path = prompts.ask_export_path(self.w, last_folder(self._settings)) if s is not None else None
        if s is None or not path:
            return
        try:
            out = s.export_edits(path)
        except ParameditError as exc:
            show_error(self.w, "Export failed", exc)
            return
        self.w.show_message(f"exported {len(s.edits())} edits to {out}")

    def confirm_discard_changes(self, action: str) -> bool:
        """Ask Save / Discard / Cancel when there is work to lose; True when it is fine to go on."""
        s = self.w.session
        if s is None or not s.has_unsaved_changes:
            return True
        detail = []
        if s.staged:
            detail.append(f"{len(s.staged)} staged edit(s) are not committed (Save commits them first).")
        if s.unsaved:
            detail.append(f"{len(s.edits())} committed edit(s) are not saved to a file.")
        choice = prompts.ask_unsaved_changes(self.w, action, " ".join(detail))
        if choice is prompts.UnsavedChoice.CANCEL:
            return False
        if choice is prompts.UnsavedChoice.DISCARD:
            return True
        path = self.save_path or self._ask_save_path()
        if not path:
            return False
        try:
            if s.staged:
                s.commit()  # first, so the plan sees every edit the save would (or would not) write
            allowed = self._save_allowed(s, path)
            if allowed is None:
                return False
            s.save(path, allow_lost_edits=allowed)  # on the GUI thread: the window moves on, so it must know
        except ParameditError as exc:
            show_error(self.w, "Save failed", exc)
            return False
        return True
