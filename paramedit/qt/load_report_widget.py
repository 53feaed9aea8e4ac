"""A banner over the tensor view when a checkpoint did not fit the model exactly."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

from paramedit.core.model.load_report import LoadReport

BANNER_STYLE = """
QFrame#loadReport { background: #fff4ce; border: 1px solid #e3b341; border-radius: 4px; }
QFrame#loadReport[notice="true"] { background: #e8f1fb; border: 1px solid #8fb3de; }
QFrame#loadReport QLabel { color: #3d2e00; background: transparent; border: none; }
QFrame#loadReport QPlainTextEdit { background: #fffaf0; color: #222; border: 1px solid #ecd48a; }
"""


def report_details(report: LoadReport) -> str:
    """Every missing, unexpected, mismatched and converted key, one per line."""
    lines: list[str] = []
    if report.missing:
        lines.append(f"In the model but not the checkpoint ({len(report.missing)}), left as the model built them:")
        lines += [f"    {n}" for n in report.missing]
    if report.unexpected:
        lines.append(f"In the checkpoint but not the model ({len(report.unexpected)}), ignored:")
        lines += [f"    {n}" for n in report.unexpected]
    if report.mismatched:
        lines.append(f"Different shapes ({len(report.mismatched)}), left as the model built them:")
        lines += [f"    {n}: checkpoint {list(c)}, model {list(m)}" for n, c, m in report.mismatched]
    if report.converted:
        lines.append(f"Converted to the model's dtype ({len(report.converted)}):")
        lines += [f"    {n}: {a} -> {b}" for n, a, b in report.converted]
    if report.tied:
        lines.append("Tied names the file did not need:")
        lines += [f"    {a} (tied to {c})" for a, c in report.tied]
    lines += [f"Note: {n}" for n in report.notes]
    return "\n".join(lines)


class LoadReportWidget(QFrame):
    """Shown only when the load report is not clean; the details list every key."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loadReport")
        self.setStyleSheet(BANNER_STYLE)
        self.title = QLabel("", objectName="loadReportTitle", wordWrap=True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.toggle = QToolButton(objectName="loadReportDetailsButton", text="Details", checkable=True)
        self.close_button = QToolButton(objectName="loadReportClose", text="✕", autoRaise=True)
        self.close_button.setToolTip("Hide (File > Load report shows it again)")
        self.close_button.clicked.connect(self.hide)
        self.details = QPlainTextEdit(objectName="loadReportDetails", readOnly=True)
        self.details.setMaximumHeight(140)
        self.details.setVisible(False)
        self.toggle.toggled.connect(self.details.setVisible)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.details)
        self.report: LoadReport | None = None
        self.setVisible(False)

    def set_report(self, report: LoadReport | None, notices: list[str] | None = None) -> None:
        """Show the banner for a report that is not clean (a warning) or for ``notices`` worth
        reading (how the file was opened and what to do, in blue); hide it otherwise."""
        self.report = report
        notices = list(notices or [])
        if report is None or report.clean:
            if not notices:
                self.setVisible(False)
                return
            self._style(notice=True)
            self.title.setText(f"<b>ℹ {_escape(notices[0])}</b>"
                               + (f"<br>{len(notices) - 1} more note(s) in Details." if len(notices) > 1 else ""))
            self.details.setPlainText("\n".join(f"Note: {n}" for n in notices)
                                      + ("\n" + report_details(report) if report is not None else ""))
            self.setVisible(True)
            return
        self._style(notice=False)
        counts = []
        if report.missing:
            counts.append(f"{len(report.missing)} missing")
        if report.unexpected:
            counts.append(f"{len(report.unexpected)} unexpected")
        if report.mismatched:
            counts.append(f"{len(report.mismatched)} with a different shape")
        self.title.setText(f"<b>⚠ The checkpoint did not fit the model exactly</b> — {', '.join(counts)}.<br>"
                           f"{report.summary()}")
        self.details.setPlainText(report_details(report))
        self.setVisible(True)

    def _style(self, *, notice: bool) -> None:
        self.setProperty("notice", notice)
        self.style().unpolish(self)
        self.style().polish(self)


def _escape(text: str) -> str:
    from html import escape

    return escape(text)
