"""Issue 3: opening, the load report, the backward button, saving, closing, devices, errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from safetensors.torch import load_file, save_file

import paramedit
from paramedit.core.model.devices import available_devices
from paramedit.demo import demo_checkpoint, demo_model_spec
from paramedit.qt import error_dialog, prompts
from paramedit.qt.grad_status import GradStatus
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.parameter_tree_model import GRAD_STATUS_ROLE
from tests.qt.window_helpers import action, select_tensor, type_into_cell


def _open(window, qtbot, request: LoadRequest) -> None:
    with qtbot.waitSignal(window.sessionOpened, timeout=20000):
        assert window.files.open_request(request)
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)


def test_demo_opens_off_the_gui_thread_with_a_tree(make_window, qtbot):
    window = make_window()
    assert window.session is None
    with qtbot.waitSignal(window.sessionOpened, timeout=20000):
        window.files.open_demo()
        assert window.busy  # running in a worker, with the busy indicator
        assert window.status_info.progress.isVisible()
    names = window.tree.tree_model.tensor_names()
    assert "embed.weight" in names and "head.weight" not in names  # tied: shown once
    tooltip = window.tree.tree_model.index_for_name("embed.weight").data(Qt.ItemDataRole.ToolTipRole)
    assert "head.weight" in tooltip
    kind = window.tree.tree_model.index_for_name("position").siblingAtColumn(4).data()
    assert "frozen" in kind
    assert window.editor.model.name == "embed.weight"  # the first trainable matrix is shown at once
    assert not window.report_banner.isVisible()  # the demo checkpoint fits exactly
    assert window.acts.device_combo.count() == len(available_devices())
    assert window.acts.device_combo.objectName() == "deviceCombo"


def test_cancelling_a_load_keeps_the_window_usable(window, qtbot):
    before = window.session
    with qtbot.waitSignal(window.files.loader.cancelled, timeout=5000):
        window.files.open_demo()
        window.status_info.cancel_button.click()
    assert not window.busy and window.session is before
    window.jobs.wait_for_threads()
    qtbot.wait(50)
    assert window.session is before


def test_load_report_banner_names_missing_and_unexpected_keys(make_window, qtbot, tmp_path):
    tensors = load_file(str(demo_checkpoint()))
    del tensors["norm.bias"]
    tensors["old_head.weight"] = torch.zeros(2)
    ckpt = tmp_path / "partial.safetensors"
    save_file(tensors, str(ckpt))
    window = make_window(paramedit.open_session(demo_model_spec(), ckpt))
    assert window.report_banner.isVisible()
    assert "norm.bias" in window.report_banner.title.text()
    assert "old_head.weight" in window.report_banner.details.toPlainText()
    Path("/tmp/paramedit_shots").mkdir(exist_ok=True)
    window.grab().save("/tmp/paramedit_shots/window_load_report.png")


def test_dropping_a_checkpoint_opens_it_into_the_current_model(window, qtbot, tmp_path):
    tensors = load_file(str(demo_checkpoint()))
    tensors["norm.bias"] = torch.full((16,), 0.25)
    ckpt = tmp_path / "dropped.safetensors"
    save_file(tensors, str(ckpt))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ckpt))])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.sessionOpened, timeout=20000):
        window.dropEvent(event)
    assert window.session.has_model
    assert torch.all(window.session.tensor("norm.bias") == 0.25)
    assert window.acts.recent_menu.actions()[0].text().endswith("dropped.safetensors")


def test_untrusted_pickle_asks_then_reloads_trusted(make_window, qtbot, tmp_path, monkeypatch):
    path = tmp_path / "with_args.pt"
    torch.save({"w": torch.ones(2, 2), "args": argparse.Namespace(lr=0.1)}, path)
    asked = []
    window = make_window()

    monkeypatch.setattr(prompts, "ask_trust_checkpoint", lambda parent, p, globs, reason: asked.append(globs) or False)
    with qtbot.waitSignal(window.files.loader.cancelled, timeout=20000):
        window.files.open_request(LoadRequest(None, str(path)))
    assert window.session is None and "argparse.Namespace" in asked[0]

    monkeypatch.setattr(prompts, "ask_trust_checkpoint", lambda parent, p, globs, reason: True)
    _open(window, qtbot, LoadRequest(None, str(path)))
    assert window.session.checkpoint.trusted
    assert "w" in window.session.names()


def test_a_model_file_is_run_only_after_asking_once(make_window, qtbot, tmp_path, monkeypatch):
    model_file = tmp_path / "tiny.py"
    model_file.write_text("import torch\nclass Tiny(torch.nn.Linear):\n    def __init__(self):\n"
                          "        super().__init__(5, 3)\n")
    window = make_window()
    monkeypatch.setattr(prompts, "ask_run_model_file", lambda parent, path: False)
    assert not window.files.open_request(LoadRequest(f"{model_file}:Tiny"))
    assert window.session is None

    asked = []
    monkeypatch.setattr(prompts, "ask_run_model_file", lambda parent, path: asked.append(path) or True)
    _open(window, qtbot, LoadRequest(f"{model_file}:Tiny"))
    _open(window, qtbot, LoadRequest(f"{model_file}:Tiny"))  # remembered: not asked again
    assert len(asked) == 1 and window.session.has_model


def test_backward_button_shows_results_icons_and_verdict(window, qtbot):
    with qtbot.waitSignal(window.backwardShown, timeout=20000):
        action(window, "backwardAction").trigger()
    report = window.session.last_backward
    panel = window.backward_panel
    assert panel.table.rowCount() == len(report.params)
    assert "trainable parameters received finite, non-zero gradients" in panel.verdict_text()
    assert report.verdict() in window.statusBar().currentMessage()
    tree = window.tree.tree_model
    assert tree.index_for_name("embed.weight").data(GRAD_STATUS_ROLE) is GradStatus.OK
    assert tree.index_for_name("position").data(GRAD_STATUS_ROLE) is GradStatus.FROZEN
    assert window.editor.gradient_action.isEnabled()
    select_tensor(window, qtbot, "mlp.0.weight")
    window.editor.gradient_action.setChecked(True)
    assert window.editor.heatmap.findChild(type(window.editor.header), "heatmapModeLabel").text() == "gradient"
    Path("/tmp/paramedit_shots").mkdir(exist_ok=True)
    window.grab().save("/tmp/paramedit_shots/window_backward.png")
    # A commit after the check: the results stay, and say they are from before (found by a review).
    assert not panel.is_stale()
    type_into_cell(window, qtbot, 0, 0, "0.5")
    action(window, "commitAction").trigger()
    assert panel.is_stale() and "changed since this check" in panel.verdict_text()
    assert tree.backward_stale()
    assert "from before the last change" in tree.index_for_name("embed.weight").data(Qt.ItemDataRole.ToolTipRole)
    assert panel.table.rowCount() == len(report.params)
    with qtbot.waitSignal(window.backwardShown, timeout=20000):
        action(window, "backwardAction").trigger()
    assert not panel.is_stale() and not tree.backward_stale()


def test_backward_asks_for_an_input_once_per_session(make_window, qtbot, monkeypatch):
    window = make_window(paramedit.open_session(torch.nn.Linear(5, 3)))
    monkeypatch.setattr(prompts, "ask_input_expressions", lambda parent, text, source: ["randn(2, 5)"])
    with qtbot.waitSignal(window.backwardShown, timeout=20000):
        action(window, "backwardAction").trigger()
    assert window.session.input_exprs == ["randn(2, 5)"]
    monkeypatch.setattr(prompts, "ask_input_expressions", prompts.ask_unsaved_changes)  # must not be asked
    with qtbot.waitSignal(window.backwardShown, timeout=20000):
        action(window, "backwardAction").trigger()
    assert window.session.last_backward.ok


def test_backward_error_is_shown_in_a_dialog(make_window, qtbot, monkeypatch):
    window = make_window(paramedit.open_session(torch.nn.Linear(5, 3)))
    monkeypatch.setattr(prompts, "ask_input_expressions", lambda parent, text, source: ["randn(2, 7)"])
    with qtbot.waitSignal(window.jobFailed, timeout=20000) as failed:
        action(window, "backwardAction").trigger()
    assert "forward raised" in failed.args[0]
    assert error_dialog.open_error_dialogs[-1].detailedText()  # the traceback is behind "Details"


def test_closing_with_unsaved_changes_asks_first(make_window, demo_session, qtbot, monkeypatch):
    window = make_window(demo_session)
    select_tensor(window, qtbot, "norm.bias")
    type_into_cell(window, qtbot, 0, 0, "1")
    asked = []
    monkeypatch.setattr(prompts, "ask_unsaved_changes",
                        lambda parent, what, detail: asked.append(detail) or prompts.UnsavedChoice.CANCEL)
    assert not window.close()
    assert window.isVisible() and "1 staged edit" in asked[0]
    monkeypatch.setattr(prompts, "ask_unsaved_changes", lambda *a: prompts.UnsavedChoice.DISCARD)
    assert window.close()
    assert not window.isVisible()


def test_save_as_and_export_edit_log(window, qtbot, tmp_path, monkeypatch):
    select_tensor(window, qtbot, "norm.bias")
    type_into_cell(window, qtbot, 0, 2, "0.75")
    action(window, "commitAction").trigger()
    assert window.isWindowModified()
    out = tmp_path / "edited.safetensors"
    monkeypatch.setattr(prompts, "ask_save_path", lambda parent, folder, suggested: str(out))
    action(window, "saveAction").trigger()
    qtbot.waitUntil(lambda: not window.busy and out.exists(), timeout=20000)
    assert load_file(str(out))["norm.bias"][2].item() == 0.75
    qtbot.waitUntil(lambda: not window.isWindowModified(), timeout=2000)

    log = tmp_path / "edits.json"
    monkeypatch.setattr(prompts, "ask_export_path", lambda parent, folder: str(log))
    action(window, "exportEditsAction").trigger()
    edits = json.loads(log.read_text())["edits"]
    assert edits == [{"op": "set", "target": "norm.bias", "index": "[2]", "value": 0.75}]


def test_revert_and_stats_from_the_tree(window, qtbot):
    bias = window.session.tensor("mlp.2.bias")
    original = bias.detach().clone()
    select_tensor(window, qtbot, "mlp.2.bias")
    type_into_cell(window, qtbot, 0, 0, "9")
    action(window, "commitAction").trigger()
    window.tree.revertRequested.emit("mlp.2.bias")
    assert torch.equal(bias.detach(), original)
    dialog = window.show_stats("mlp.2.bias")
    assert dialog.findChild(type(window.editor.header), "stat_max").text() == f"{original.max().item():.6g}"
    dialog.close()


def test_device_combo_lists_core_devices_and_same_device_is_a_no_op(window):
    combo = window.acts.device_combo
    assert [combo.itemData(i) for i in range(combo.count())] == available_devices()
    window.set_device("cpu")
    assert not window.busy


def test_unexpected_exception_shows_a_dialog_instead_of_dying(window):
    before = len(error_dialog.open_error_dialogs)
    try:
        raise ValueError("boom")
    except ValueError as exc:
        error_dialog.unexpected_error_hook(ValueError, exc, exc.__traceback__)
    box = error_dialog.open_error_dialogs[-1]
    assert len(error_dialog.open_error_dialogs) == before + 1
    assert "boom" in box.text() and "Traceback" in box.detailedText()


def test_screenshot_from_the_command_line(tmp_path, qapp):
    from paramedit.cli import main

    out = tmp_path / "out.png"
    assert main(["--demo", "--screenshot", str(out)]) == 0
    image = QImage(str(out))
    assert not image.isNull() and (image.width(), image.height()) == (1400, 900)
    # Options between the spec and the checkpoint, as the README's Hugging Face example writes them.
    out.unlink()
    assert main([demo_model_spec(), "--device", "cpu", str(demo_checkpoint()), "--screenshot", str(out)]) == 0
    assert not QImage(str(out)).isNull()


def test_opening_another_model_with_staged_edits_asks_first(window, qtbot, monkeypatch):
    select_tensor(window, qtbot, "norm.weight")
    type_into_cell(window, qtbot, 0, 0, "2")
    before = window.session
    monkeypatch.setattr(prompts, "ask_unsaved_changes", lambda *a: prompts.UnsavedChoice.CANCEL)
    assert not window.files.open_demo()
    assert window.session is before and len(before.staged) == 1


def test_open_model_dialog_builds_a_request_without_importing(qtbot, tmp_path):
    from paramedit.qt.open_model_dialog import OpenModelDialog, model_candidates

    model_file = tmp_path / "net.py"
    model_file.write_text("raise SystemExit('never imported')\nclass Net: pass\ndef build(): pass\n")
    assert model_candidates(model_file) == ["Net", "build"]
    dialog = OpenModelDialog(None, str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.file_edit.setText(str(model_file))
    dialog.name_combo.setCurrentText("Net")
    dialog.kwargs_edit.setText('{"width": 8}')
    request = dialog.request()
    assert request.model == f"{model_file}:Net" and request.model_kwargs == {"width": 8}
    dialog.kwargs_edit.setText("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        dialog.request()


def test_importing_paramedit_qt_is_lazy():
    import subprocess
    import sys

    code = ("import sys, paramedit.qt; assert 'PySide6' not in sys.modules; "
            "from paramedit.qt import MainWindow; assert MainWindow.__name__ == 'MainWindow'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_combo_moves_the_model_off_the_gui_thread_and_commits_there(window, qtbot):
    weight = window.session.tensor("mlp.0.weight")
    combo = window.acts.device_combo
    # The move's own end: an automatic scan it preempted (issue 10) ends first.
    with qtbot.waitSignal(window.jobs.jobFinished, timeout=60000, check_params_cb=lambda label: label.startswith("Moving")):
        combo.activated.emit(combo.findData("cuda:0"))
    qtbot.waitUntil(lambda: str(window.session.device) == "cuda:0", timeout=5000)
    assert window.session.tensor("mlp.0.weight") is weight and weight.is_cuda
    assert window.tree.tree_model.index_for_name("mlp.0.weight").siblingAtColumn(3).data() == "cuda:0"
    select_tensor(window, qtbot, "mlp.0.weight")
    ptr = weight.data_ptr()
    type_into_cell(window, qtbot, 0, 0, "0.25")
    action(window, "commitAction").trigger()
    assert weight.data_ptr() == ptr and weight[0, 0].item() == 0.25
    with qtbot.waitSignal(window.backwardShown, timeout=60000):
        action(window, "backwardAction").trigger()
    assert window.session.last_backward.device == "cuda:0" and window.session.last_backward.ok


@pytest.mark.parametrize(("choice", "moved", "staged_after", "committed"), [
    (prompts.StagedChoice.CANCEL, False, 1, 0),
    (prompts.StagedChoice.DISCARD, True, 0, 0),
    (prompts.StagedChoice.COMMIT, True, 0, 1),
])  # fmt: skip
def test_switching_device_with_staged_edits_asks_first(window, qtbot, monkeypatch, choice, moved, staged_after,
                                                       committed):
    """Issue 5: moving the model never drops staged edits silently (no CUDA needed: the move is recorded)."""
    session = window.session
    before = float(session.tensor("mlp.2.bias").detach()[0])
    moves: list[str] = []
    monkeypatch.setattr(session, "to", lambda device: moves.append(device))
    asked: list[tuple[int, str]] = []

    def ask(parent, count, device):
        asked.append((count, device))
        return choice

    monkeypatch.setattr(prompts, "ask_staged_before_device_change", ask)
    select_tensor(window, qtbot, "mlp.2.bias")
    type_into_cell(window, qtbot, 0, 0, "0.5")
    assert len(session.staged) == 1
    window.set_device("cuda:7")
    assert asked == [(1, "cuda:7")]
    if moved:
        qtbot.waitUntil(lambda: moves == ["cuda:7"] and not window.busy, timeout=5000)
    else:
        assert moves == [] and window.acts.device_combo.currentData() == "cpu"
    assert len(session.staged) == staged_after
    assert len(session.history.records) == committed
    assert float(session.tensor("mlp.2.bias").detach()[0]) == (0.5 if committed else before)


@pytest.mark.qt_no_exception_capture
def test_a_failing_item_model_shows_one_dialog_and_the_window_keeps_working(make_window, demo_session, qtbot,
                                                                            monkeypatch):
    """Issue 5: an exception raised in data() on every paint ends in one dialog that counts them."""
    from paramedit.qt.tensor_table_model import TensorTableModel

    original = TensorTableModel.data
    failing = {"on": False}

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if failing["on"]:
            raise RuntimeError("data exploded")
        return original(self, index, role)

    # Patched before the model exists: PySide6 resolves the Python override when it wraps the object.
    monkeypatch.setattr(TensorTableModel, "data", data)
    window = make_window(demo_session)
    previous = error_dialog.install_excepthook()
    try:
        select_tensor(window, qtbot, "mlp.2.bias")
        before = len(error_dialog.open_error_dialogs)
        failing["on"] = True
        for _ in range(5):  # paints from the event loop, as in the running app
            window.editor.table.viewport().update()
            qtbot.wait(20)
        failing["on"] = False
        new = error_dialog.open_error_dialogs[before:]
        assert len(new) == 1 and "data exploded" in new[0].text()
        assert "times" in new[0].informativeText()
        type_into_cell(window, qtbot, 0, 0, "0.25")  # and the window still edits
        action(window, "commitAction").trigger()
        assert float(window.session.tensor("mlp.2.bias").detach()[0]) == 0.25
    finally:
        sys.excepthook = previous


def test_errors_still_show_after_a_dialog_went_with_its_window(qtbot):
    """Found by a review: a dialog deleted with its parent stayed in the list and broke every
    later error dialog (RuntimeError: Internal C++ object already deleted)."""
    import shiboken6
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    first = error_dialog.show_error(parent, "Boom", "the same message")
    shiboken6.delete(parent)  # the window goes, taking its dialog, without a "finished"
    assert not shiboken6.isValid(first)
    second = error_dialog.show_error(None, "Boom", "the same message")
    assert shiboken6.isValid(second) and second.text() == "the same message"
    second.close()
