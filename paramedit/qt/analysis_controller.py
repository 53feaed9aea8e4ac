"""The window's views of the whole model, wired in one place.

The health scan (:class:`ScanController`) feeds the Findings tab, the tree's markers and the
heatmap's marks; activating a finding shows it. The comparison (:class:`CompareController`)
feeds the tree's change columns, the compare bar and the editor's B − A and A views.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QTabWidget, QWidget

from paramedit.core.analysis.checkpoint_compare import CompareReport
from paramedit.core.analysis.health_scan import Finding, ScanReport
from paramedit.core.session import Session
from paramedit.qt.compare_bar_widget import CompareBarWidget
from paramedit.qt.compare_controller import CompareController
from paramedit.qt.findings_panel import FindingsPanel
from paramedit.qt.job_runner import JobRunner
from paramedit.qt.parameter_tree_widget import ParameterTreeWidget
from paramedit.qt.scan_controller import ScanController
from paramedit.qt.settings import last_folder
from paramedit.qt.tensor_editor_widget import TensorEditorWidget
from paramedit.qt.window_actions import WindowActions

FINDINGS_TAB = "Findings"


class AnalysisController(QObject):
    """Scan and comparison for one window; the window lays out :attr:`findings_panel` and
    :attr:`compare_bar` and forwards session changes here."""

    statusMessage = Signal(str)
    failed = Signal(str, object)  # title, exception: the window shows it
    findingShown = Signal(object)  # the Finding now shown in the editor

    def __init__(self, jobs: JobRunner, tree: ParameterTreeWidget, editor: TensorEditorWidget,
                 acts: WindowActions, tabs: QTabWidget, settings: QSettings, dialog_parent: QWidget) -> None:
        super().__init__(dialog_parent)
        self._jobs, self._tree, self._editor, self._acts, self._tabs = jobs, tree, editor, acts, tabs
        self._settings = settings
        self._session: Session | None = None
        self.scans = ScanController(jobs, self)
        self.compares = CompareController(jobs, dialog_parent, self)
        self.findings_panel = FindingsPanel(acts.scan)
        self.compare_bar = CompareBarWidget([editor.difference_action, editor.reference_action, acts.compare_again,
                                             acts.clear_compare])
        self.findings_panel.findingActivated.connect(self.show_finding)
        self.scans.reportChanged.connect(self._scan_report_changed)
        self.scans.scanFinished.connect(self._scan_finished)
        self.scans.scanFailed.connect(self._scan_failed)
        self.scans.scanCancelled.connect(self._scan_cancelled)
        self.compares.comparisonChanged.connect(self._comparison_changed)
        self.compares.staleChanged.connect(self._show_compare_bar)
        # Bound methods, not lambdas holding self: see TensorEditorWidget on what those keep alive.
        self.compares.compareFailed.connect(self._compare_failed)
        self.compares.compareCancelled.connect(self._compare_cancelled)

    # ------------------------------------------------------------------ the session
    def attach(self, session: Session | None) -> None:
        self._session = session
        self.compares.attach(session)
        self.scans.attach(session)

    def weights_changed(self, record: object) -> None:
        """After a commit, undo or redo: re-scan what it wrote; the comparison's figures are old."""
        self.scans.rescan(list(getattr(record, "names", [])))
        self.compares.mark_stale()

    def update_actions(self, idle: bool) -> None:
        s, a = self._session, self._acts
        on = s is not None and idle
        a.compare_opened.setEnabled(on and s is not None and s.checkpoint is not None)
        a.compare_again.setEnabled(on and self.compares.report is not None)
        a.clear_compare.setEnabled(self.compares.report is not None)

    # ------------------------------------------------------------------ actions
    def scan(self) -> bool:
        return self.scans.scan_all()

    def ask_and_compare(self) -> bool:
        return self.compares.ask_and_compare(last_folder(self._settings))

    def compare_with_opened(self) -> bool:
        return self.compares.compare_with(None)

    def compare_again(self) -> bool:
        return self.compares.compare_again()

    def clear_comparison(self) -> None:
        self.compares.clear()

    def show_finding(self, finding: Finding) -> bool:
        """Select the finding's tensor in the tree and show the finding in the editor."""
        if not self._tree.select_name(finding.tensor):
            self.statusMessage.emit(f"{finding.tensor} is not in the model any more")
            return False
        if not self._editor.show_finding(finding):
            return False
        self.statusMessage.emit(finding.describe())
        self.findingShown.emit(finding)
        return True

    # ------------------------------------------------------------------ results
    def _scan_report_changed(self, report: ScanReport | None) -> None:
        self.findings_panel.set_report(report, self.scans.note if report is None or not self.scans.whole else "")
        self._tree.show_findings(report)
        self._editor.set_scan_report(report)
        index = self._tabs.indexOf(self.findings_panel)
        if index >= 0:
            counts = report.counts() if report is not None else {}
            serious = counts.get("error", 0) + counts.get("warning", 0)
            self._tabs.setTabText(index, f"{FINDINGS_TAB} ({serious})" if serious else FINDINGS_TAB)

    def _scan_finished(self, report: ScanReport, user: bool) -> None:
        if user:
            self.statusMessage.emit(report.summary())
            self._tabs.setCurrentWidget(self.findings_panel)

    def _scan_failed(self, exc: BaseException, user: bool) -> None:
        if user:
            self.failed.emit("Scan failed", exc)
        else:
            self.statusMessage.emit(f"the automatic scan failed: {exc}")

    def _scan_cancelled(self) -> None:
        self.statusMessage.emit("scan cancelled: the findings are as they were")

    def _compare_failed(self, exc: BaseException) -> None:
        self.failed.emit("Comparison failed", exc)

    def _compare_cancelled(self) -> None:
        self.statusMessage.emit("comparison cancelled: nothing changed")

    def _comparison_changed(self, report: CompareReport | None) -> None:
        self._tree.show_comparison(report)
        self._editor.set_comparison(report)
        self._show_compare_bar()
        self.update_actions(not self._jobs.busy)
        if report is not None:
            self.statusMessage.emit(f"compared with {self.compares.label}: {report.summary()}")

    def _show_compare_bar(self, *_args: object) -> None:
        self.compare_bar.show_report(self.compares.report, self.compares.label, stale=self.compares.stale)
