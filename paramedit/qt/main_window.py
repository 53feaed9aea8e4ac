"""The paramedit window: parameter tree, tensor table and heatmap, staged edits, backward results,
scan findings and the comparison with a reference checkpoint."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QSplitter, QTabWidget, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

from paramedit.app_icon import application_icon
from paramedit.core.analysis.tensor_views import first_tensor_to_show
from paramedit.core.errors import BackwardCheckError
from paramedit.core.model.backward_check import BackwardReport
from paramedit.core.session import Session
from paramedit.qt import prompts
from paramedit.qt.about_text import about_html
from paramedit.qt.analysis_controller import AnalysisController
from paramedit.qt.autosave_controller import AutosaveController
from paramedit.qt.backward_input_controller import BackwardInputController, model_key
from paramedit.qt.backward_job import edited_parameters, run_window_check
from paramedit.qt.backward_results_widget import BackwardResultsWidget
from paramedit.qt.error_dialog import reports_errors, show_error
from paramedit.qt.file_controller import FileController
from paramedit.qt.job_runner import JobRunner
from paramedit.qt.load_report_widget import LoadReportWidget
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.none_refcount_guard import protect_none
from paramedit.qt.outputs_panel import OutputsPanel
from paramedit.qt.parameter_tree_widget import ParameterTreeWidget
from paramedit.qt.presentation_controller import PresentationController
from paramedit.qt.probe_controller import ProbeController
from paramedit.qt.probe_job import locked
from paramedit.qt.session_signals import SessionSignals
from paramedit.qt.settings import app_settings
from paramedit.qt.staged_edits_widget import StagedEditsWidget
from paramedit.qt.stats_dialog import StatsDialog
from paramedit.qt.status_info_widget import StatusInfoWidget
from paramedit.qt.tensor_editor_widget import TensorEditorWidget
from paramedit.qt.window_actions import build_actions, build_menus, build_present_toolbar, build_toolbar
from paramedit.qt.zoom_controller import ZoomController

protect_none()  # before any window paints: see none_refcount_guard (PySide6 6.12 on Python <= 3.11)

MESSAGE_MS = 12000
MEMORY_REFRESH_MS = 5000


class MainWindow(QMainWindow):
    """``MainWindow(session)`` shows an open session; ``MainWindow()`` starts empty."""

    sessionOpened = Signal()  # a session (or none) is now shown
    commitVerified = Signal(object)  # list[IdentityCheck] of a commit, undo, redo or revert
    backwardShown = Signal(object)  # BackwardReport now in the panel
    jobFailed = Signal(str)  # message of a background job's error (also shown in a dialog)

    def __init__(self, session: Session | None = None, *, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("paramedit[*]")
        self.setWindowIcon(application_icon())  # also when made from a notebook, not through paramedit.qt.app
        self.setAcceptDrops(True)
        self.settings = settings or app_settings()
        self._session: Session | None = None
        self._signals: SessionSignals | None = None
        self.request: LoadRequest | None = None
        self._reask_inputs = False
        self.jobs = JobRunner(self)
        self.inputs = BackwardInputController(self, self.settings)
        self.probes = ProbeController(self)

        self.tree = ParameterTreeWidget(self)
        self.editor = TensorEditorWidget(self)
        self.report_banner = LoadReportWidget(self)
        self.acts = build_actions(self)
        self.files = FileController(self)
        self.autosave = AutosaveController(self)
        self.staged_panel = StagedEditsWidget(self.acts.commit, self.acts.discard, self)
        self.backward_panel = BackwardResultsWidget(self)
        self.outputs_panel = OutputsPanel(self.probes, self.inputs, self.model_key, self.settings, self)
        self.status_info = StatusInfoWidget(self)
        self.bottom_tabs = QTabWidget(self)
        self.analysis = AnalysisController(self.jobs, self.tree, self.editor, self.acts, self.bottom_tabs,
                                           self.settings, self)
        self._build_layout()
        build_menus(self, self.acts)
        self.main_toolbar = build_toolbar(self, self.acts)
        self.addToolBar(self.main_toolbar)
        self.present_toolbar = build_present_toolbar(self, self.acts)
        self.addToolBar(self.present_toolbar)
        self.zoom = ZoomController([self.main_splitter], self.settings, self)
        self.presentation = PresentationController(self, self.settings)
        # Opaque, so a long message ends cleanly at the device label instead of running beneath it.
        self.status_info.setAutoFillBackground(True)
        self.statusBar().addPermanentWidget(self.status_info)
        self._connect()
        self.files.rebuild_recent_menu()
        self._memory_timer = QTimer(self, interval=MEMORY_REFRESH_MS)
        self._memory_timer.timeout.connect(lambda: self.status_info.update_session(self._session))
        self._memory_timer.start()
        self.resize(1400, 900)
        self.presentation.restore()
        self.set_session(session)

    # ------------------------------------------------------------------ construction
    def _build_layout(self) -> None:
        self.bottom_tabs.setObjectName("bottomTabs")
        self.bottom_tabs.addTab(self.staged_panel, "Edits")
        self.bottom_tabs.addTab(self.outputs_panel, "Outputs")
        self.bottom_tabs.addTab(self.backward_panel, "Backward check")
        self.bottom_tabs.addTab(self.analysis.findings_panel, "Findings")
        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.right_splitter.setObjectName("rightSplitter")
        self.right_splitter.addWidget(self.editor)
        self.right_splitter.addWidget(self.bottom_tabs)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 1)
        self.right_splitter.setSizes([620, 230])
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 6, 6, 0)
        column.setSpacing(6)
        column.addWidget(self.report_banner)
        column.addWidget(self.autosave.notice)  # what a crash recovery restored
        column.addWidget(self.analysis.compare_bar)
        column.addWidget(self.right_splitter, 1)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.addWidget(self.tree)
        self.main_splitter.addWidget(right)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([340, 1060])  # the table then shows ten compact float32 columns at 1400 px
        self.setCentralWidget(self.main_splitter)

    def _connect(self) -> None:
        self.editor.row_image.set_input_shapes(self.probes.used_input_shapes)
        self.tree.tensorSelected.connect(self.editor.show_tensor)
        self.tree.revertRequested.connect(self.revert)
        self.tree.statsRequested.connect(self.show_stats)
        self.tree.nameCopied.connect(lambda n: self.show_message(f"copied {n}"))
        self.editor.statusMessage.connect(self.show_message)
        self.editor.table.commitRequested.connect(self.commit)
        self.backward_panel.parameterActivated.connect(self.tree.select_name)
        self.acts.device_combo.activated.connect(lambda i: self.set_device(self.acts.device_combo.itemData(i)))
        self.jobs.jobStarted.connect(self._job_started)
        self.jobs.jobFinished.connect(lambda _label: self._job_ended())
        self.jobs.jobProgressed.connect(self.status_info.set_progress)
        self.status_info.cancelRequested.connect(self.jobs.cancel)
        self.analysis.statusMessage.connect(self.show_message)
        self.analysis.failed.connect(self.job_failed)

    # ------------------------------------------------------------------ the session
    @property
    def session(self) -> Session | None:
        return self._session

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def set_session(self, session: Session | None, request: LoadRequest | None = None) -> None:
        """Show ``session`` (dropping the previous one without asking: callers ask first)."""
        if self._signals is not None:
            self._signals.detach()
            self._signals.deleteLater()
            self._signals = None
        self._session, self.request, self._reask_inputs = session, request, False
        if session is not None:
            sig = self._signals = SessionSignals(session, self)
            sig.valuesChanged.connect(self._values_changed)
            sig.committed.connect(lambda _r, checks: self._verified("Commit", checks))
            sig.undone.connect(lambda _r, checks: self._verified("Undo", checks))
            sig.redone.connect(lambda _r, checks: self._verified("Redo", checks))
            for changed in (sig.committed, sig.undone, sig.redone):
                changed.connect(self._weights_changed)
            sig.changedOutside.connect(self.probes.changed_outside)
            sig.backwardFinished.connect(self._backward_finished)
            sig.deviceChanged.connect(self._device_changed)
            sig.saved.connect(lambda path: self.show_message(f"saved {path}"))
        self.autosave.attach(session, request)
        self.outputs_panel.set_session(session)
        self.probes.attach(session)
        self.tree.set_session(session)
        self.editor.set_session(session)
        self.analysis.attach(session)
        self.report_banner.set_report(session.report if session else None, session.notices() if session else None)
        self.backward_panel.set_report(session.last_backward if session else None)
        self.staged_panel.refresh(session)
        self._device_changed()
        self.update_title()
        if session is not None:
            self.tree.select_name(first_tensor_to_show(session))
        self.sessionOpened.emit()

    def _values_changed(self) -> None:
        s = self._session
        edited = s.edited_names() if s else set()
        self.tree.tree_model.refresh_markers()
        self.editor.refresh(edited)
        self.staged_panel.refresh(s)
        self.update_title()

    def _weights_changed(self, record: object, _checks: list) -> None:
        self.probes.weights_changed()
        self.backward_panel.mark_stale()  # the last check's gradients belong to the old weights
        self.tree.tree_model.mark_backward_stale()
        self.analysis.weights_changed(record)

    def _verified(self, what: str, checks: list) -> None:
        self.staged_panel.show_verification(what, checks)
        if self.bottom_tabs.currentWidget() is not self.outputs_panel:  # watching the outputs change: stay
            self.bottom_tabs.setCurrentWidget(self.staged_panel)
        ok = all(c.ok for c in checks)
        names = ", ".join(c.name for c in checks)
        self.show_message(f"{what}: {names} written in place — same object, same storage"
                          if ok else f"{what}: identity check FAILED for {names}")
        self.commitVerified.emit(checks)

    def _device_changed(self, moved_to: str = "") -> None:
        s = self._session
        combo = self.acts.device_combo
        if s is not None:
            with signals_blocked(combo):
                combo.setCurrentIndex(max(combo.findData(str(s.device)), 0))
            if moved_to:
                self.tree.tree_model.refresh_markers()
                self.editor.refresh()
                self.show_message(f"model moved to {moved_to}")
        self.status_info.update_session(s)
        self._update_actions()

    def update_title(self) -> None:
        s, r = self._session, self.request
        what = r.label() if r is not None else ("model" if s is not None and s.has_model else "")
        self.setWindowTitle(f"paramedit — {what}[*]" if what else "paramedit[*]")
        self.setWindowModified(bool(s is not None and s.has_unsaved_changes))
        self._update_actions()

    def _update_actions(self) -> None:
        s, idle = self._session, not self.jobs.busy
        a = self.acts
        for action in a.session_actions():
            action.setEnabled(s is not None and idle)
        if s is not None and idle:
            a.commit.setEnabled(bool(s.staged))
            a.discard.setEnabled(bool(s.staged))
            a.undo.setEnabled(s.can_undo)
            a.redo.setEnabled(s.can_redo)
            a.backward.setEnabled(s.has_model)
            a.backward_input.setEnabled(s.has_model)
            a.export_edits.setEnabled(bool(s.history.records))
        for action in (a.open_model, a.open_checkpoint, a.open_checkpoint_folder, a.open_demo, a.recent_menu.menuAction()):
            action.setEnabled(idle)
        a.device_combo.setEnabled(s is not None and idle)
        a.show_report.setEnabled(s is not None and s.report is not None)
        self.analysis.update_actions(idle)

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, MESSAGE_MS)
        self.statusBar().setToolTip(text)  # a long message is cut at the device label: hover reads it all

    # ------------------------------------------------------------------ background jobs
    def _job_started(self, label: str, cancellable: bool) -> None:
        self.status_info.set_busy(label, cancellable=cancellable)
        # No edits while another thread works on the model; a scan the window started by itself
        # only reads, and gives way to any job the user starts (see JobRunner, preemptible).
        self.main_splitter.setEnabled(not self.jobs.busy)
        self._update_actions()

    def _job_ended(self) -> None:
        self.status_info.set_busy("", cancellable=False)
        self.main_splitter.setEnabled(True)
        self._update_actions()
        self.status_info.update_session(self._session)

    def job_failed(self, title: str, exc: BaseException) -> None:
        box = show_error(self, title, exc)
        self.jobFailed.emit(box.text())

    # ------------------------------------------------------------------ drops and closing
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """A dropped checkpoint opens into the current model (or on its own)."""
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files.open_checkpoint_path(paths[0])

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.files.confirm_discard_changes("closing"):
            event.ignore()
            return
        self.analysis.attach(None)  # no scan starts after this
        self.probes.stop()
        self.jobs.cancel()
        self.presentation.save()
        if self._signals is not None:
            self._signals.detach()
        self.autosave.detach(clean=True)  # the user saved or chose to discard
        event.accept()

    # ------------------------------------------------------------------ editing
    @reports_errors("Commit failed")
    def commit(self) -> None:
        self.editor.table.commit_open_editor()
        if self._session is not None and self._session.staged:
            self._session.commit()

    @reports_errors("Discard failed")
    def discard(self) -> None:
        if self._session is not None:
            self._session.discard()
            self.show_message("staged edits discarded")

    @reports_errors("Undo failed")
    def undo(self) -> None:
        if self._session is not None and self._session.undo() is None:
            self.show_message("nothing to undo")

    @reports_errors("Redo failed")
    def redo(self) -> None:
        if self._session is not None and self._session.redo() is None:
            self.show_message("nothing to redo")

    @reports_errors("Revert failed")
    def revert(self, name: str) -> None:
        if self._session is not None:
            self._session.revert(name)

    @reports_errors("Stats")
    def show_stats(self, name: str) -> StatsDialog | None:
        if self._session is None:
            return None
        dialog = StatsDialog(self, name, self._session.stats(name))
        dialog.open()
        return dialog

    def show_load_report(self) -> None:
        report = self._session.report if self._session else None
        if report is not None and report.clean:
            self.show_message(report.summary() + " The checkpoint fits the model exactly.")
        self.report_banner.set_report(report)

    def about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About paramedit", about_html(self._session), parent=self)
        box.setObjectName("aboutDialog")
        box.setIconPixmap(application_icon().pixmap(64, 64))
        box.open()

    # ------------------------------------------------------------------ device and backward
    def set_device(self, device: str) -> None:
        """Move the model to ``device`` off the GUI thread (asks about staged edits first)."""
        s = self._session
        if s is None or str(s.device) == device or self.jobs.busy:
            self._device_changed()
            return
        if s.staged:
            choice = prompts.ask_staged_before_device_change(self, len(s.staged), device)
            if choice is prompts.StagedChoice.CANCEL:
                self._device_changed()
                return
            if choice is prompts.StagedChoice.COMMIT:
                self.commit()
                if s.staged:  # the commit failed and said why
                    self._device_changed()
                    return
            else:
                s.discard()

        def failed(exc: BaseException) -> None:
            self._device_changed()
            self.job_failed(f"Could not move the model to {device}", exc)

        self.jobs.run(f"Moving the model to {device}", locked, self.probes.lock, s.to, device,
                      on_result=lambda _r: None, on_error=failed)

    def run_backward(self, *, ask: bool = False, edited_only: bool = False) -> None:
        """Run core's backward check in a worker; ask for an input when the model gives none
        (``ask``: ask anyway, to change it). ``edited_only`` checks the parameters that differ from
        the checkpoint alone, as the full check does by itself when it would not fit in memory."""
        s = self._session
        if s is None or self.jobs.busy:
            return
        only = edited_parameters(s) if edited_only else None
        if edited_only and not only:
            self.show_message("no parameter differs from the checkpoint yet: commit an edit first")
            return
        if not s.has_model:
            show_error(self, "Backward check", BackwardCheckError(
                "the backward check needs a model; this session has only a checkpoint's tensors. "
                "Open it with a model (File > Open Model…) to run it."))
            return
        key = self.model_key()
        choice = self.inputs.choose(s, key, ask=ask or self._reask_inputs)
        if not choice.go:
            return
        self._reask_inputs = False

        def failed(exc: BaseException) -> None:
            self._reask_inputs = s.example_inputs is None
            self.job_failed("Backward check failed", exc)

        self.jobs.run("Running the backward check", locked, self.probes.lock, run_window_check, s, choice.exprs,
                      only, on_error=failed,
                      on_result=lambda _r: self.inputs.worked(key, choice.exprs if choice.asked else None))

    def model_key(self) -> str:
        """What the inputs given for this model are remembered under (its spec, else its class)."""
        r, s = self.request, self._session
        return model_key(s, r.model if r else None, r.model_kwargs if r else None) if s is not None else ""

    def _backward_finished(self, report: BackwardReport) -> None:
        self.tree.tree_model.set_backward_report(report)
        self.backward_panel.set_report(report)
        self.bottom_tabs.setCurrentWidget(self.backward_panel)
        self.editor.set_backward_available(True)
        if self.editor.gradient_action.isChecked():
            self.editor.refresh_heatmap_now()
        self.show_message(f"backward check: {report.verdict()}")
        self.backwardShown.emit(report)
