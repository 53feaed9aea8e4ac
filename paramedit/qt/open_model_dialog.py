"""File > Open Model…: a model spec, an optional checkpoint and keyword arguments."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from paramedit.qt.load_request import LoadRequest

CHECKPOINT_FILTER = ("Checkpoints (*.pt *.pth *.bin *.ckpt *.safetensors *.safetensors.index.json);;"
                     "All files (*)")


def model_candidates(path: str | Path) -> list[str]:
    """Top-level classes and functions of a model file, read with ``ast`` (never imported here)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)
                 and not n.name.startswith("_") and n.name != "example_inputs"]
    return classes + functions


class OpenModelDialog(QDialog):
    """Collects a :class:`LoadRequest`; nothing is imported until the user accepts."""

    def __init__(self, parent: QWidget | None, folder: str) -> None:
        super().__init__(parent)
        self.setObjectName("openModelDialog")
        self.setWindowTitle("Open model")
        self.setMinimumWidth(560)
        self._folder = folder

        self.file_edit = QLineEdit(objectName="modelFile")
        self.file_edit.setPlaceholderText("path/to/model.py   or   package.module")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_model)
        self.name_combo = QComboBox(objectName="modelName", editable=True)
        self.name_combo.setToolTip("An nn.Module subclass, or a function returning an nn.Module")
        self.file_edit.editingFinished.connect(self._refresh_names)

        self.ckpt_edit = QLineEdit(objectName="modelCheckpoint")
        self.ckpt_edit.setPlaceholderText("optional: .pt, .safetensors or a folder")
        self.ckpt_edit.setToolTip("A checkpoint file (.pt .pth .bin .ckpt .safetensors), a *.index.json of a "
                                  "sharded set, or a save_pretrained folder; empty: the model's own weights")
        ckpt_file = QPushButton("File…")
        ckpt_file.clicked.connect(self._browse_checkpoint)
        ckpt_dir = QPushButton("Folder…")
        ckpt_dir.clicked.connect(self._browse_checkpoint_folder)
        self.kwargs_edit = QLineEdit(objectName="modelKwargs")
        self.kwargs_edit.setPlaceholderText('optional JSON, e.g. {"width": 8}')
        self.error_label = QLabel("", objectName="openModelError", wordWrap=True)
        self.error_label.setStyleSheet("color: #b3261e;")

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.file_edit, 1)
        row.addWidget(browse)
        form.addRow("Model file or module:", row)
        form.addRow("Class or function:", self.name_combo)
        row = QHBoxLayout()
        row.addWidget(self.ckpt_edit, 1)
        row.addWidget(ckpt_file)
        row.addWidget(ckpt_dir)
        form.addRow("Checkpoint:", row)
        form.addRow("Keyword arguments:", self.kwargs_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("<small>Opening a model file runs its Python code.</small>"))
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", self._folder, "Python (*.py)")
        if path:
            self.file_edit.setText(path)
            self._refresh_names()

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint", self._folder, CHECKPOINT_FILTER)
        if path:
            self.ckpt_edit.setText(path)

    def _browse_checkpoint_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Checkpoint folder", self._folder)
        if path:
            self.ckpt_edit.setText(path)

    def _refresh_names(self) -> None:
        text = self.file_edit.text().strip()
        if text.endswith(".py"):
            current = self.name_combo.currentText()
            self.name_combo.clear()
            self.name_combo.addItems(model_candidates(text))
            if current:
                self.name_combo.setCurrentText(current)

    def request(self) -> LoadRequest:
        """The request the fields describe; raises ValueError with the reason when incomplete."""
        source, name = self.file_edit.text().strip(), self.name_combo.currentText().strip()
        if ":" in source and not name:
            source, _, name = source.rpartition(":")
        if not source or not name:
            raise ValueError("give a model file (or module) and the class or function to call")
        kwargs_text = self.kwargs_edit.text().strip()
        try:
            kwargs = json.loads(kwargs_text) if kwargs_text else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"keyword arguments are not valid JSON: {exc}") from None
        if not isinstance(kwargs, dict):
            raise ValueError('keyword arguments must be a JSON object such as {"width": 8}')
        checkpoint = self.ckpt_edit.text().strip() or None
        return LoadRequest(model=f"{source}:{name}", checkpoint=checkpoint, model_kwargs=kwargs)

    def _accept(self) -> None:
        try:
            self.request()
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        self.accept()
