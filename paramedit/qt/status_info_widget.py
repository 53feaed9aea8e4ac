"""The status bar's permanent part: a busy indicator with Cancel, the device, and memory use."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from paramedit.core.session import Session


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def session_bytes(session: Session) -> int:
    """Bytes held by the session's tensors (tied tensors counted once)."""
    total = 0
    for name in session.names():
        t = session.tensor(name)
        total += t.numel() * t.element_size()
    return total


def process_rss() -> int | None:
    """Resident memory of this process, where the platform tells it cheaply."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return None


class StatusInfoWidget(QWidget):
    """Shows what is running (with Cancel when it can be abandoned), the device and memory."""

    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.busy_label = QLabel("", objectName="busyLabel")
        self.progress = QProgressBar(objectName="busyProgress")
        self.progress.setRange(0, 0)  # indeterminate until a job reports steps (set_progress)
        self.progress.setMaximumWidth(120)
        self.progress.setMaximumHeight(14)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", objectName="cancelJobButton")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.device_label = QLabel("", objectName="deviceLabel")
        self.memory_label = QLabel("", objectName="memoryLabel")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 0, 6, 0)  # a gap before a long message is cut off
        layout.setSpacing(10)
        for widget in (self.busy_label, self.progress, self.cancel_button, self.device_label, self.memory_label):
            layout.addWidget(widget)
        self.set_busy("", cancellable=False)
        # As tall with Cancel as without: a status bar that grows when a job starts moves the whole
        # window's layout, and repainting all of it cost the GUI ~60 ms at each re-scan and probe.
        self.setMinimumHeight(self.cancel_button.sizeHint().height())

    def set_busy(self, label: str, *, cancellable: bool) -> None:
        busy = bool(label)
        self.busy_label.setText(label + "…" if busy else "")
        for widget in (self.busy_label, self.progress):
            widget.setVisible(busy)
        self.cancel_button.setVisible(busy and cancellable)
        self.progress.setRange(0, 0)

    def set_progress(self, done: int, total: int, what: str = "") -> None:
        """Steps of the running job (a scan's tensors): a filling bar instead of a busy one."""
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
        self.progress.setToolTip(f"{done} of {total}" + (f": {what}" if what else ""))

    def update_session(self, session: Session | None) -> None:
        rss = process_rss()
        rss_text = f"process {human_bytes(rss)}" if rss is not None else ""
        if session is None:
            self.device_label.setText("no model open")
            self.memory_label.setText(rss_text)
            return
        self.device_label.setText(f"device {session.device}")
        self.memory_label.setText(f"tensors {human_bytes(session_bytes(session))}" + (f" · {rss_text}" if rss_text else ""))
