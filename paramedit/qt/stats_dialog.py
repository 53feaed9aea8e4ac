"""Tree context menu > Stats…: summary statistics of one tensor."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from paramedit.core.tensor_tree import TensorStats


def _num(value: float) -> str:
    return f"{value:.6g}"


class StatsDialog(QDialog):
    """min, max, mean, std, norm, NaN/Inf and zero counts (floating stats over finite values)."""

    def __init__(self, parent: QWidget | None, name: str, stats: TensorStats) -> None:
        super().__init__(parent)
        self.setObjectName("statsDialog")
        self.setWindowTitle(f"Stats — {name}")
        form = QFormLayout()
        rows = [("elements", f"{stats.numel:,}"), ("min", _num(stats.min)), ("max", _num(stats.max)),
                ("mean", _num(stats.mean)), ("std", _num(stats.std)), ("L2 norm", _num(stats.norm)),
                ("zeros", f"{stats.zeros:,}"), ("NaN", f"{stats.nan:,}"), ("±Inf", f"{stats.inf:,}")]
        for label, text in rows:
            value = QLabel(text)
            value.setObjectName(f"stat_{label.replace(' ', '_').replace('±', '')}")
            form.addRow(f"{label}:", value)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<b>{name}</b>"))
        layout.addLayout(form)
        layout.addWidget(buttons)
