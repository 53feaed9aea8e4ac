"""Issue 9: saving in the window goes through core's save plan before anything is written.

A TorchScript archive or a pickled model saved over became a bare state dict that
``torch.jit.load`` / ``torch.load`` no longer open; a model that did not fit its checkpoint was
saved without a word about what it would leave out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from safetensors.torch import load_file
from torch import nn

import paramedit
from paramedit.qt import error_dialog, prompts
from tests.qt.window_helpers import action, select_tensor, type_into_cell

SHOTS = Path("/tmp/paramedit_shots")
REAL_ASK_SAVE_DESPITE_WARNINGS = prompts.ask_save_despite_warnings  # before conftest stubs every ask_*


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _torchscript_file(tmp_path: Path) -> Path:
    path = tmp_path / "scripted.pt"  # named like a state dict, as silero's VAD model is
    torch.jit.script(_mlp()).save(str(path))
    return path


def _pickled_model_file(tmp_path: Path) -> Path:
    path = tmp_path / "whole_model.pt"
    torch.save(_mlp(), path)
    return path


def _edit_and_commit(window, qtbot, name: str = "0.bias") -> None:
    select_tensor(window, qtbot, name)
    type_into_cell(window, qtbot, 0, 0, "0.5")
    action(window, "commitAction").trigger()
    assert window.session.unsaved


@pytest.mark.parametrize("make_file", [_torchscript_file, _pickled_model_file], ids=["torchscript", "pickled-model"])
def test_saving_over_a_file_it_cannot_rewrite_whole_is_refused(make_window, qtbot, tmp_path, monkeypatch, make_file):
    path = make_file(tmp_path)
    before = path.read_bytes()
    window = make_window(paramedit.open_session(None, path, trust=True))
    _edit_and_commit(window, qtbot)
    monkeypatch.setattr(prompts, "ask_save_path", lambda *a: str(path))
    action(window, "saveAction").trigger()
    assert not window.busy  # refused before any job started
    box = error_dialog.open_error_dialogs[-1]
    assert box.windowTitle() == "Cannot save over this file"
    assert "Save As" in box.text() and "another file" in box.text()
    if make_file is _torchscript_file:
        assert "TorchScript archive" in box.text()
    else:
        assert "pickled model" in box.text()
    assert path.read_bytes() == before
    assert window.session.unsaved and window.isWindowModified()
    assert "nothing was written" in window.statusBar().currentMessage()


def test_the_unsaved_changes_question_cannot_save_over_it_either(make_window, qtbot, tmp_path, monkeypatch):
    path = _torchscript_file(tmp_path)
    before = path.read_bytes()
    window = make_window(paramedit.open_session(_mlp(), path, trust=True))
    _edit_and_commit(window, qtbot)
    monkeypatch.setattr(prompts, "ask_unsaved_changes", lambda *a: prompts.UnsavedChoice.SAVE)
    monkeypatch.setattr(prompts, "ask_save_path", lambda *a: str(path))
    assert not window.files.confirm_discard_changes("closing")
    assert error_dialog.open_error_dialogs[-1].windowTitle() == "Cannot save over this file"
    assert path.read_bytes() == before
    assert torch.jit.load(str(path)).state_dict()["0.bias"][0].item() != 0.5  # still a TorchScript archive


def _partial_checkpoint(tmp_path: Path) -> Path:
    """Holds the first layer and a tensor the model does not have, not the last layer."""
    model = _mlp()
    path = tmp_path / "partial.pt"
    torch.save({"0.weight": model[0].weight.detach().clone(), "0.bias": model[0].bias.detach().clone(),
                "extra": torch.ones(2)}, path)
    return path


def test_a_model_that_does_not_fit_its_checkpoint_asks_first(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window(paramedit.open_session(_mlp(), _partial_checkpoint(tmp_path)))
    _edit_and_commit(window, qtbot, "0.bias")
    out = tmp_path / "edited.safetensors"
    asked: list[list[str]] = []
    monkeypatch.setattr(prompts, "ask_save_path", lambda *a: str(out))
    monkeypatch.setattr(prompts, "ask_save_despite_warnings", lambda parent, path, warnings: asked.append(warnings))
    action(window, "saveAction").trigger()  # the answer is None: cancel
    assert not window.busy and not out.exists()
    warnings = " ".join(asked[0])
    assert "2.weight" in warnings and "extra" in warnings
    assert window.statusBar().currentMessage() == "save cancelled: nothing was written"

    monkeypatch.setattr(prompts, "ask_save_despite_warnings", lambda *a: True)
    action(window, "saveAction").trigger()
    qtbot.waitUntil(lambda: not window.busy and out.exists(), timeout=20000)
    saved = load_file(str(out))
    assert sorted(saved) == ["0.bias", "0.weight", "extra"]  # the file's own tensors, not the model's
    assert saved["0.bias"][0].item() == 0.5
    qtbot.waitUntil(lambda: not window.isWindowModified(), timeout=2000)


def test_a_save_that_fits_asks_nothing(window, qtbot, tmp_path, monkeypatch):
    _edit_and_commit(window, qtbot, "norm.bias")
    out = tmp_path / "edited.safetensors"
    monkeypatch.setattr(prompts, "ask_save_path", lambda *a: str(out))
    action(window, "saveAction").trigger()  # ask_save_despite_warnings is the conftest's failing stub
    qtbot.waitUntil(lambda: not window.busy and out.exists(), timeout=20000)


def test_the_save_warnings_prompt_defaults_to_cancel(qtbot, tmp_path):
    session = paramedit.open_session(_mlp(), _partial_checkpoint(tmp_path))
    session.stage("2.weight", "[0, 0]", 1.0)
    session.commit()
    warnings = session.plan_save(tmp_path / "model.pt").warnings()
    box, save = prompts.save_warnings_box(None, str(tmp_path / "model.pt"), warnings)
    qtbot.addWidget(box)
    assert box.defaultButton() is not save and box.escapeButton() is box.defaultButton()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    assert "model.pt" in box.text()
    assert "2.weight, 2.bias" in box.informativeText() and "will NOT be saved" in box.informativeText()
    assert "extra" in box.informativeText()
    assert "Nothing is written if you cancel" in box.informativeText()
    box.show()
    qtbot.waitExposed(box)
    SHOTS.mkdir(exist_ok=True)
    box.grab().save(str(SHOTS / "save_warnings_prompt.png"))


@pytest.mark.parametrize(("button", "expected"), [("Save anyway", True), ("Cancel", False)])
def test_the_real_save_warnings_prompt_answers_what_was_clicked(qtbot, button, expected):
    clicked = []

    def click() -> None:
        box = QApplication.activeModalWidget()
        if box is None:  # not shown yet
            QTimer.singleShot(10, click)
            return
        chosen = next(b for b in box.buttons() if b.text().replace("&", "") == button)
        clicked.append(chosen.text())
        chosen.click()

    QTimer.singleShot(0, click)
    assert REAL_ASK_SAVE_DESPITE_WARNINGS(None, "/tmp/x.pt", ["the model does not fit"]) is expected
    assert clicked
