"""Every question the window asks the user, each in one small function.

The window calls these through the module (``prompts.ask_unsaved_changes(...)``), so a test
replaces one with ``monkeypatch.setattr(prompts, "ask_unsaved_changes", ...)`` and no modal
dialog ever blocks it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path

import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QLineEdit, QMessageBox, QPushButton, QWidget

from paramedit.qt.load_request import LoadRequest
from paramedit.qt.open_model_dialog import CHECKPOINT_FILTER, OpenModelDialog
from paramedit.qt.selection_edit_dialog import SelectionEdit, SelectionEditDialog

SAVE_FILTER = "safetensors (*.safetensors);;PyTorch (*.pt)"


class UnsavedChoice(Enum):
    """The answer to "you have unsaved changes"."""

    SAVE = "save"
    DISCARD = "discard"
    CANCEL = "cancel"


class StagedChoice(Enum):
    """The answer to "you have staged edits" before moving the model to another device."""

    COMMIT = "commit"
    DISCARD = "discard"
    CANCEL = "cancel"


def ask_unsaved_changes(parent: QWidget | None, action: str, detail: str) -> UnsavedChoice:
    """Save / Discard / Cancel before ``action`` ("closing", "opening another model")."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                      f"Save your changes before {action}?", parent=parent)
    box.setInformativeText(detail)
    buttons = QMessageBox.StandardButton
    box.setStandardButtons(buttons.Save | buttons.Discard | buttons.Cancel)
    box.setDefaultButton(buttons.Save)
    answer = box.exec()
    if answer == buttons.Save:
        return UnsavedChoice.SAVE
    if answer == buttons.Discard:
        return UnsavedChoice.DISCARD
    return UnsavedChoice.CANCEL


def ask_recover_autosave(parent: QWidget | None, path: str, context: dict, count: int) -> bool:
    """After a crash: reopen the model and checkpoint and replay the autosaved edits?"""
    what = " + ".join(str(p) for p in (context.get("model_spec"), context.get("checkpoint")) if p) or "a model"
    box = QMessageBox(QMessageBox.Icon.Question, "Recover edits",
                      f"paramedit did not close cleanly last time. Recover {count} committed edit(s) "
                      f"made on {what}?", parent=parent)
    box.setInformativeText(f"The edits were saved in {path} at {context.get('timestamp', '?')}. "
                           "They are replayed as one step you can undo; nothing is saved until you save.")
    buttons = QMessageBox.StandardButton
    box.setStandardButtons(buttons.Yes | buttons.No)
    box.setDefaultButton(buttons.Yes)
    return box.exec() == buttons.Yes


def ask_staged_before_device_change(parent: QWidget | None, count: int, device: str) -> StagedChoice:
    box = QMessageBox(QMessageBox.Icon.Question, "Staged edits",
                      f"{count} staged edit(s) are not committed yet. Commit them before moving the model to "
                      f"{device}?", parent=parent)
    commit = box.addButton("Commit, then move", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard edits and move", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(commit)
    box.exec()
    clicked = box.clickedButton()
    if clicked is commit:
        return StagedChoice.COMMIT
    if clicked is discard:
        return StagedChoice.DISCARD
    return StagedChoice.CANCEL


def save_warnings_box(parent: QWidget | None, path: str, warnings: list[str]) -> tuple[QMessageBox, QPushButton]:
    """The "save anyway?" question, built but not shown: (box, its "Save anyway" button)."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Save with warnings?",
                      f"Read this before saving {Path(path).name}:", parent=parent)
    box.setObjectName("saveWarningsDialog")
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setInformativeText("\n\n".join(f"• {w[:1].upper()}{w[1:]}." for w in warnings)
                           + f"\n\nThe file is written to {path}. Nothing is written if you cancel.")
    # Sentences that name tensors read badly in QMessageBox's default narrow column.
    box.setStyleSheet("QLabel#qt_msgbox_informativelabel { min-width: 480px; }")
    save = box.addButton("Save anyway", QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    return box, save


def ask_save_despite_warnings(parent: QWidget | None, path: str, warnings: list[str]) -> bool:
    """Save anyway / Cancel (the default) when a save plan has something a user should read first:
    the model does not fit the file, edits that would not be saved, what is left out."""
    box, save = save_warnings_box(parent, path, warnings)
    box.exec()
    return box.clickedButton() is save


def ask_trust_checkpoint(parent: QWidget | None, path: str, globals_: list[str]) -> bool:
    """Whether to load THIS pickle with full unpickling, which can run code from the file."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Untrusted checkpoint",
                      f"{Path(path).name} is a pickle that needs more than plain tensors.", parent=parent)
    box.setInformativeText(
        "Loading it fully runs code chosen by whoever made the file: it could do anything your user "
        "account can. Only trust files from a source you trust.\n\n"
        f"It asks for {len(globals_)} Python global(s) (see Details). Trust this file and load it?"
    )
    box.setDetailedText("\n".join(globals_) or "(none listed)")
    trust = box.addButton("Trust this file", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is trust


def ask_run_model_file(parent: QWidget | None, path: str) -> bool:
    """Asked once per model file: importing it runs its Python code."""
    box = QMessageBox(QMessageBox.Icon.Question, "Run model code?",
                      "Opening a model file runs its Python code.", parent=parent)
    box.setInformativeText(f"{path}\n\nOnly open model files you wrote or trust. Open it?")
    ok = box.addButton("Open and run it", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is ok


def ask_input_expressions(parent: QWidget | None, previous: list[str] | None) -> list[str] | None:
    """The model's forward inputs as expressions, separated by ``;`` (None: cancelled)."""
    text, ok = QInputDialog.getText(
        parent, "Example input",
        "The model has no example input. Give its forward inputs as expressions,\n"
        "separated by ';'  — e.g.  randn(2, 5)   or   randint(1000, (1, 16))",
        QLineEdit.EchoMode.Normal, "; ".join(previous or []) or "randn(2, 5)",
    )
    if not ok:
        return None
    exprs = [part.strip() for part in text.split(";") if part.strip()]
    return exprs or None


def ask_open_checkpoint(parent: QWidget | None, folder: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Open checkpoint", folder, CHECKPOINT_FILTER)
    return path or None


def ask_open_checkpoint_folder(parent: QWidget | None, folder: str) -> str | None:
    path = QFileDialog.getExistingDirectory(parent, "Open checkpoint folder (save_pretrained)", folder)
    return path or None


def ask_save_path(parent: QWidget | None, folder: str, suggested: str = "edited.safetensors") -> str | None:
    path, chosen = QFileDialog.getSaveFileName(parent, "Save tensors as", str(Path(folder) / suggested), SAVE_FILTER)
    if not path:
        return None
    if not path.endswith((".safetensors", ".pt", ".pth", ".bin")):
        path += ".pt" if "*.pt" in chosen else ".safetensors"
    return path


def ask_export_path(parent: QWidget | None, folder: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Export edit log", str(Path(folder) / "edits.json"),
                                          "Edit log (*.json)")
    return path or None


def ask_selection_edit(parent: QWidget | None, region: str, dtype: torch.dtype,
                       apply: Callable[[SelectionEdit], None], mode: str, *, tensor_name: str = "",
                       folder: str = "") -> bool:
    """Fill / Formula / Init / Copy dialog; ``apply`` stages the edit (and may raise to keep it open)."""
    dialog = SelectionEditDialog(parent, region, dtype, apply, mode, tensor_name=tensor_name, folder=folder)
    return dialog.exec() == QDialog.DialogCode.Accepted


def ask_open_model(parent: QWidget | None, folder: str) -> LoadRequest | None:
    """Model spec, optional checkpoint and keyword arguments, or None when cancelled."""
    dialog = OpenModelDialog(parent, folder)
    return dialog.request() if dialog.exec() == QDialog.DialogCode.Accepted else None
