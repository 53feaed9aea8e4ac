"""Every question the window asks the user, each in one small function.

The window calls these through the module (``prompts.ask_unsaved_changes(...)``), so a test
replaces one with ``monkeypatch.setattr(prompts, "ask_unsaved_changes", ...)`` and no modal
dialog ever blocks it.

Each ``ask_*`` function has a safe answer (:func:`safe_answer`): refuse, do not run, do not
trust, cancel. In an unattended run (``--screenshot``, ``--self-test``: see
:mod:`paramedit.qt.unattended`) it gives that answer without showing anything, and tells the
run why, so the command can say it and exit 2 instead of waiting for a click that never comes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMessageBox, QPushButton, QWidget

from paramedit.qt.image_input import IMAGE_FILTER
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.open_model_dialog import CHECKPOINT_FILTER, OpenModelDialog
from paramedit.qt.save_defaults import complete_save_path, save_filters
from paramedit.qt.selection_edit_dialog import SelectionEdit, SelectionEditDialog
from paramedit.qt.unattended import current as current_unattended

F = TypeVar("F", bound=Callable[..., Any])


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


def _unattended(answer: Any, reason: str | Callable[..., str]) -> Callable[[F], F]:
    """Give ``answer`` (and tell the run ``reason``, or ``reason(*args)``) when no one is there."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def ask(*args: Any, **kwargs: Any) -> Any:
            run = current_unattended()
            if run is None:
                return fn(*args, **kwargs)
            try:
                text = reason(*args, **kwargs) if callable(reason) else reason
            except TypeError:  # called with arguments the reason does not expect: still decline
                text = _no_one(fn.__name__.removeprefix("ask_").replace("_", " "))
            run.decline(text)
            return answer

        ask.safe_answer = answer  # type: ignore[attr-defined]
        return ask  # type: ignore[return-value]

    return decorate


def safe_answer(ask: Callable[..., Any]) -> Any:
    """What an ``ask_*`` function answers when no one is there to ask."""
    return ask.safe_answer  # type: ignore[attr-defined]


def _no_one(question: str) -> str:
    return f"no one was there to answer a question ({question}), so the safe answer was taken"


@_unattended(UnsavedChoice.CANCEL, lambda _p, action, _d: _no_one(f"save your changes before {action}?"))
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


class RecoveryChoice(Enum):
    """The answer to "paramedit did not close cleanly: recover the autosaved work?"."""

    RECOVER = "recover"
    DISCARD = "discard"  # delete the autosave
    LATER = "later"  # keep it and ask again at the next start


def _counted(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def autosave_recovery_box(parent: QWidget | None, path: str, context: dict, commits: int,
                          staged: int) -> tuple[QMessageBox, dict[RecoveryChoice, QPushButton]]:
    """The recovery question, built but not shown: (box, its Recover / Discard / Later buttons)."""
    what = " + ".join(str(p) for p in (context.get("model_spec"), context.get("checkpoint")) if p) or "a model"
    work = " and ".join(text for n, text in ((commits, _counted(commits, "commit")),
                                             (staged, _counted(staged, "staged edit"))) if n) or "edits"
    box = QMessageBox(QMessageBox.Icon.Question, "Recover edits",
                      f"paramedit did not close cleanly last time. Recover {work} made on {what}?", parent=parent)
    box.setObjectName("recoverAutosaveDialog")
    box.setInformativeText(
        f"They were autosaved in {path} at {context.get('timestamp', '?')}.\n\n"
        "Recover reopens the model and replays each commit as its own undo step, and stages the staged "
        "edits again; nothing is saved until you save. Discard deletes the autosave. Later keeps it and "
        "asks again at the next start.")
    buttons = {RecoveryChoice.RECOVER: box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole),
               RecoveryChoice.DISCARD: box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole),
               RecoveryChoice.LATER: box.addButton("Later", QMessageBox.ButtonRole.RejectRole)}
    box.setDefaultButton(buttons[RecoveryChoice.RECOVER])
    box.setEscapeButton(buttons[RecoveryChoice.LATER])
    return box, buttons


@_unattended(RecoveryChoice.LATER, lambda _p, path, *_a: _no_one(f"recover the edits autosaved in {path}?"))
def ask_autosave_recovery(parent: QWidget | None, path: str, context: dict, commits: int,
                          staged: int) -> RecoveryChoice:
    """After a crash: Recover (reopen and replay), Discard (delete the autosave) or Later (keep it)."""
    box, buttons = autosave_recovery_box(parent, path, context, commits, staged)
    box.exec()
    clicked = box.clickedButton()
    return next((choice for choice, button in buttons.items() if button is clicked), RecoveryChoice.LATER)


@_unattended(StagedChoice.CANCEL, lambda _p, _n, device: _no_one(f"commit staged edits before moving to {device}?"))
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


@_unattended(False, lambda _p, path, warnings: f"not saved to {path}: " + "; ".join(warnings))
def ask_save_despite_warnings(parent: QWidget | None, path: str, warnings: list[str]) -> bool:
    """Save anyway / Cancel (the default) when a save plan has something a user should read first:
    the model does not fit the file, edits that would not be saved, what is left out."""
    box, save = save_warnings_box(parent, path, warnings)
    box.exec()
    return box.clickedButton() is save


_REFUSED = "did not load it."


def _trust_reason(_parent: QWidget | None, path: str, _globals: list[str], reason: str = "") -> str:
    return reason or (f"{path} needs more than plain tensors to load, and loading it could run code from the "
                      "file; pass --trust to load it")


def trust_question(path: str, reason: str = "") -> str:
    """What the trust prompt says the file is, in core's words (a TorchScript archive is named
    as one, a pickled model as a pickle): its first sentences, up to "did not load it", without
    the globals (the dialog's Details list them) or core's command-line advice."""
    end = reason.find(_REFUSED)
    what = reason[: end + len(_REFUSED)] if end >= 0 else reason.split(" Load it only if")[0].strip()
    return what or f"{Path(path).name} needs more than plain tensors to load."


@_unattended(False, _trust_reason)
def ask_trust_checkpoint(parent: QWidget | None, path: str, globals_: list[str], reason: str = "") -> bool:
    """Whether to load THIS file with full unpickling, which can run code from it.

    ``reason`` is core's :class:`UntrustedCheckpointError` message: it says what the file is.
    """
    box = QMessageBox(QMessageBox.Icon.Warning, "Untrusted checkpoint", trust_question(path, reason), parent=parent)
    box.setObjectName("trustDialog")
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


@_unattended(False, lambda _p, folder, *_a: f"{folder} builds its model with Python code shipped in the folder, and no "
             "one was there to allow it; it opened as tensors alone (pass --trust-remote-code to run it)")
def ask_run_remote_code(parent: QWidget | None, folder: str, files: list[str]) -> bool:
    """Whether to build a Hugging Face folder's architecture with the code that comes with it
    (``trust_remote_code``); else it opens as tensors alone."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Run the folder's code?",
                      "This folder's config.json builds its model with Python code that comes with the folder "
                      "(trust_remote_code).", parent=parent)
    box.setObjectName("remoteCodeDialog")
    box.setInformativeText(f"{folder}\n\nIt would run: {', '.join(files)}. That code can do anything your user "
                           "account can; run it only if you trust where the folder came from. Without it the "
                           "folder opens as tensors alone (no backward check or outputs).")
    run = box.addButton("Run it and build the model", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Open as tensors alone", QMessageBox.ButtonRole.RejectRole)
    box.exec()
    return box.clickedButton() is run


@_unattended(False, lambda _p, path: f"opening {path} runs its Python code, and no one was there to allow it; "
             "name the model file on the command line to allow it")
def ask_run_model_file(parent: QWidget | None, path: str) -> bool:
    """Asked once per model file: importing it runs its Python code."""
    box = QMessageBox(QMessageBox.Icon.Question, "Run model code?",
                      "Opening a model file runs its Python code.", parent=parent)
    box.setInformativeText(f"{path}\n\nOnly open model files you wrote or trust. Open it?")
    ok = box.addButton("Open and run it", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is ok


def parse_input_expressions(text: str) -> list[str]:
    """``"input_ids=randint(50, (1, 8)); attention_mask=int(ones(1, 8))"`` -> one expression each."""
    return [part.strip() for part in text.split(";") if part.strip()]


def input_expressions_dialog(parent: QWidget | None, text: str, source: str = "") -> QInputDialog:
    """The input question, built but not shown, pre-filled with ``text`` (``source``: where it is from)."""
    dialog = QInputDialog(parent)
    dialog.setObjectName("inputExpressionsDialog")
    dialog.setWindowTitle("Example input")
    where = f"\n\nPre-filled — {source}." if source else ""
    dialog.setLabelText(
        "The backward check and the outputs run the model on its forward inputs. Give them as expressions\n"
        "separated by ';', a keyword argument of forward as name=EXPR:   randn(2, 5)   or\n"
        "input_ids=randint(1000, (1, 16)); attention_mask=int(ones(1, 16))" + where)
    dialog.setTextValue(text)
    dialog.setInputMode(QInputDialog.InputMode.TextInput)
    dialog.resize(max(dialog.sizeHint().width(), 560), dialog.sizeHint().height())
    return dialog


@_unattended(None, _no_one("the model's forward inputs for the backward check"))
def ask_input_expressions(parent: QWidget | None, text: str, source: str = "") -> list[str] | None:
    """The model's forward inputs as expressions, separated by ``;`` (None: cancelled).

    ``text`` pre-fills the field (the model's own default or the last input given for it);
    ``source`` says where it comes from ("from the model's config (GPT2LMHeadModel)").
    """
    dialog = input_expressions_dialog(parent, text, source)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return parse_input_expressions(dialog.textValue()) or None


@_unattended(None, _no_one("a checkpoint to open"))
def ask_open_checkpoint(parent: QWidget | None, folder: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Open checkpoint", folder, CHECKPOINT_FILTER)
    return path or None


@_unattended(None, _no_one("an image file to give the model"))
def ask_image_file(parent: QWidget | None, folder: str) -> str | None:
    """An image file (PNG, JPEG, ...) to run the model on, or None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Run the model on an image", folder, IMAGE_FILTER)
    return path or None


@_unattended(None, _no_one("a checkpoint to compare with"))
def ask_compare_checkpoint(parent: QWidget | None, folder: str) -> str | None:
    """The reference checkpoint (A) to compare the open model (B) with, or None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Compare with checkpoint (A)", folder, CHECKPOINT_FILTER)
    return path or None


@_unattended(None, _no_one("a checkpoint folder to open"))
def ask_open_checkpoint_folder(parent: QWidget | None, folder: str) -> str | None:
    path = QFileDialog.getExistingDirectory(parent, "Open checkpoint folder (save_pretrained)", folder)
    return path or None


def save_dialog(parent: QWidget | None, folder: str, suggested: str) -> QFileDialog:
    """The Save As dialog, built but not shown: opens in ``folder`` with ``suggested`` typed in and
    the filter of its format selected (no extension: a new folder, as core saves one)."""
    dialog = QFileDialog(parent, "Save tensors as", folder)
    dialog.setObjectName("saveDialog")
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    filters = save_filters(suggested)
    dialog.setNameFilters(filters)
    dialog.selectNameFilter(filters[0])
    dialog.selectFile(str(Path(folder) / suggested))
    return dialog


@_unattended(None, _no_one("where to save"))
def ask_save_path(parent: QWidget | None, folder: str, suggested: str = "edited.safetensors") -> str | None:
    """Where to save; ``suggested``'s extension picks the format offered first (none: a folder)."""
    dialog = save_dialog(parent, folder, suggested)
    accepted = dialog.exec() == QDialog.DialogCode.Accepted
    files, chosen = dialog.selectedFiles(), dialog.selectedNameFilter()
    dialog.deleteLater()
    return complete_save_path(files[0], chosen) or None if accepted and files else None


@_unattended(None, _no_one("where to export the edit log"))
def ask_export_path(parent: QWidget | None, folder: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Export edit log", str(Path(folder) / "edits.json"),
                                          "Edit log (*.json)")
    return path or None


@_unattended(False, lambda _p, region, *_a, **_k: _no_one(f"an edit of {region}"))
def ask_selection_edit(parent: QWidget | None, region: str, dtype: torch.dtype,
                       apply: Callable[[SelectionEdit], None], mode: str, *, tensor_name: str = "",
                       folder: str = "", shape: tuple[int, ...] | None = None) -> bool:
    """Fill / Formula / Init / Copy dialog; ``apply`` stages the edit (and may raise to keep it open).
    ``shape`` (the first selected region's) adapts the formula templates."""
    dialog = SelectionEditDialog(parent, region, dtype, apply, mode, tensor_name=tensor_name, folder=folder,
                                 shape=shape)
    return dialog.exec() == QDialog.DialogCode.Accepted


@_unattended(None, _no_one("a model to open"))
def ask_open_model(parent: QWidget | None, folder: str) -> LoadRequest | None:
    """Model spec, optional checkpoint and keyword arguments, or None when cancelled."""
    dialog = OpenModelDialog(parent, folder)
    return dialog.request() if dialog.exec() == QDialog.DialogCode.Accepted else None


@_unattended(None, lambda _p, name, *_a, **_k: _no_one(f"how {name} splits into heads"))
def ask_head_count(parent: QWidget | None, name: str, reason: str) -> str | None:
    """How many heads (and parts: 3 for a fused q/k/v) a tensor holds, as typed (``12`` or
    ``12x3``); None when cancelled. ``reason`` says why it is asked (or why the last answer did
    not fit)."""
    text, ok = QInputDialog.getText(parent, "Split into heads",
                                    f"{reason}\n\nNumber of heads, or heads x parts for a fused q/k/v (e.g. 12 or 12x3):")
    return text if ok and text.strip() else None
