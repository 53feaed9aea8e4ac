"""Issue 12: the Outputs panel shows what an edit did to the model's outputs, before and after
every commit, undo and redo, compared with the last change, the checkpoint as opened or a pinned
state; a slow model waits for Run; a failing forward is a message in the panel."""

from __future__ import annotations

import copy
import time

import pytest
import torch
from torch import nn

import paramedit
from paramedit.qt import error_dialog, prompts
from paramedit.qt.outputs_state import Baseline
from paramedit.qt.selection_edit_dialog import SelectionEdit
from tests.qt.window_helpers import action, select_cells, select_tensor


def make_classifier() -> nn.Module:
    """784 -> 32 -> 10 whose four inputs all land in classes 0-4 until those rows are zeroed."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    with torch.no_grad():
        model[0].weight.mul_(3)
        model[2].weight.mul_(3)
        model[2].weight[:5].abs_()  # h >= 0 after the ReLU: classes 0-4 win while these rows are there
        model[2].bias.zero_()
    return model


def classifier_inputs() -> torch.Tensor:
    return torch.randn(4, 784, generator=torch.Generator().manual_seed(1))


def direct(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The logits torch computes, in eval mode, on a copy (the window's model is left alone)."""
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        return twin(x)


def kl(before: torch.Tensor, after: torch.Tensor) -> float:
    p, q = torch.log_softmax(before.double(), -1), torch.log_softmax(after.double(), -1)
    return float((p.exp() * (p - q)).sum(-1).mean())


def outputs_settled(window, qtbot, timeout: int = 15000):
    """The panel's state once the outputs describe the model as it is now."""
    probes = window.probes
    qtbot.waitUntil(lambda: not probes.running and probes.state().after is not None and not probes.state().stale,
                    timeout=timeout)
    return probes.state()


def fill_rows(window, qtbot, monkeypatch, name: str, rows: tuple[int, int], value: float) -> None:
    """Select whole rows of ``name`` in the table, Fill them (Ctrl+F's dialog answered) and commit."""
    select_tensor(window, qtbot, name)
    select_cells(window, rows, (0, window.editor.model.columnCount()))

    def answer(_parent, _region, _dtype, apply, _mode, **_kw):
        apply(SelectionEdit("fill", value=value))
        return True

    monkeypatch.setattr(prompts, "ask_selection_edit", answer)
    action(window, "fillAction").trigger()
    action(window, "commitAction").trigger()


@pytest.fixture
def classifier_window(make_window):
    model, x = make_classifier(), classifier_inputs()
    session = paramedit.open_session(model)
    session.example_inputs = (x,)
    window = make_window(session)
    window.bottom_tabs.setCurrentWidget(window.outputs_panel)
    return window, model, x


def test_zeroing_classes_0_to_4_changes_the_predictions_and_undo_brings_them_back(classifier_window, qtbot,
                                                                                  monkeypatch):
    """The demonstration of issue 12: zero the output rows of classes 0-4, see four predictions
    change, undo, see them come back; every figure as torch computes it."""
    window, model, x = classifier_window
    panel = window.findChild(type(window.outputs_panel), "outputsPanel")
    assert panel is window.outputs_panel and window.bottom_tabs.indexOf(panel) >= 0
    first = outputs_settled(window, qtbot)  # run by itself when the model opened
    original = direct(model, x)
    assert first.after.top1 == original.argmax(-1).tolist() and all(c < 5 for c in first.after.top1)
    assert first.before is None and panel.model.samples() == 4 and not panel.model.changed_samples()

    fill_rows(window, qtbot, monkeypatch, "2.weight", (0, 5), 0.0)
    edited = direct(model, x)
    state = outputs_settled(window, qtbot)
    assert state.before.top1 == original.argmax(-1).tolist()
    assert state.after.top1 == edited.argmax(-1).tolist() and all(c >= 5 for c in state.after.top1)
    changed = int((original.argmax(-1) != edited.argmax(-1)).sum())
    assert changed == 4 and state.change.top1_changed == changed
    assert state.change.kl == pytest.approx(kl(original, edited), rel=1e-6)
    assert state.change.max_abs_logit_diff == pytest.approx(float((edited - original).abs().max()), rel=1e-5)
    assert panel.model.changed_samples() == [0, 1, 2, 3]  # every sample highlighted
    assert state.change.describe() in panel.change_label.text().replace("&gt;", ">")
    assert not panel.view.isColumnHidden(1)  # before and after side by side

    action(window, "undoAction").trigger()
    back = outputs_settled(window, qtbot)
    assert back.after.top1 == original.argmax(-1).tolist()  # the predictions came back
    assert back.before.top1 == edited.argmax(-1).tolist() and back.change.top1_changed == 4

    action(window, "redoAction").trigger()
    again = outputs_settled(window, qtbot)
    assert again.after.top1 == edited.argmax(-1).tolist()
    assert torch.equal(again.after.scores, state.after.scores)  # the same state, the same outputs


def test_a_pinned_baseline_keeps_the_comparison_across_commits_and_undo_redo_flip_a_and_b(classifier_window,
                                                                                         qtbot, monkeypatch):
    window, model, x = classifier_window
    panel = window.outputs_panel
    outputs_settled(window, qtbot)
    original = direct(model, x)
    panel.baseline_combo.setCurrentIndex(panel.baseline_combo.findData(Baseline.OPENED))
    panel.baseline_combo.activated.emit(panel.baseline_combo.currentIndex())
    assert window.probes.state().baseline is Baseline.OPENED

    fill_rows(window, qtbot, monkeypatch, "2.weight", (0, 2), 0.0)
    outputs_settled(window, qtbot)
    fill_rows(window, qtbot, monkeypatch, "2.weight", (2, 5), 0.0)
    two = outputs_settled(window, qtbot)
    both = direct(model, x)
    # Against the checkpoint as opened, not the state between the two commits.
    assert two.before.top1 == original.argmax(-1).tolist()
    assert two.change.kl == pytest.approx(kl(original, both), rel=1e-6) and two.change.top1_changed == 4

    panel.pin_button.click()  # pin the state with both edits
    assert window.probes.state().baseline is Baseline.PINNED
    assert panel.baseline_combo.currentData() is Baseline.PINNED
    action(window, "undoAction").trigger()  # A/B: back to one edit, compared with the pinned state
    one = outputs_settled(window, qtbot)
    middle = direct(model, x)
    assert one.before.top1 == both.argmax(-1).tolist()
    assert one.change.kl == pytest.approx(kl(both, middle), rel=1e-6)
    action(window, "redoAction").trigger()  # the pinned state itself: no change
    same = outputs_settled(window, qtbot)
    assert same.change is None and same.before is None and "pinned state" in same.message


class SlowNet(nn.Module):
    """A forward pass that takes a while (and counts how often it ran)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.seconds, self.calls = seconds, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(self.seconds)
        return self.fc(x)


def test_a_slow_forward_is_not_run_again_by_itself_and_run_shows_the_change(make_window, qtbot, monkeypatch):
    monkeypatch.setattr("paramedit.qt.probe_controller.SLOW_PROBE_S", 0.05)  # the threshold, lowered
    net = SlowNet(0.2)
    session = paramedit.open_session(net)
    session.example_inputs = (torch.randn(2, 4),)
    window = make_window(session)
    panel = window.outputs_panel
    assert window.probes.slow_seconds == 0.05
    first = outputs_settled(window, qtbot)
    assert not first.auto and "took" in first.note and panel.run_button.isVisibleTo(panel)
    assert not panel.auto_check.isChecked() and panel.note_label.isVisibleTo(panel)

    calls = net.calls
    window.session.stage("fc.bias", "[...]", 5.0)
    action(window, "commitAction").trigger()
    state = window.probes.state()
    assert state.stale and not window.probes.running and not window.probes.scheduled  # not run by itself
    assert net.calls == calls and "Press Run" in state.message
    with qtbot.waitSignal(window.probes.probeFinished, timeout=10000):
        panel.run_button.click()
    after = outputs_settled(window, qtbot)
    assert net.calls == calls + 1 and after.change is not None
    assert after.change.max_abs_logit_diff == pytest.approx(float((after.after.scores - after.before.scores).abs().max()))


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("this model cannot take that input")


def test_a_forward_that_raises_is_a_message_in_the_panel_with_the_model_as_it_was(make_window, qtbot):
    net = Broken()
    net.train()
    weight = net.fc.weight.detach().clone()
    session = paramedit.open_session(net)
    session.example_inputs = (torch.randn(2, 4),)
    window = make_window(session)
    qtbot.waitUntil(lambda: window.probes.state().error, timeout=10000)
    message = window.probes.state().message
    assert "forward raised ValueError" in message and "cannot take that input" in message
    panel = window.outputs_panel
    assert panel.message_label.isVisibleTo(panel) and "cannot take that input" in panel.message_label.text()
    assert panel.run_button.isVisibleTo(panel) and not error_dialog.open_error_dialogs  # in the panel, no dialog
    assert net.training and torch.equal(net.fc.weight, weight)  # its mode and weights as they were
    assert all(not m._forward_pre_hooks for m in net.modules())  # the probe's stop hooks are gone


def test_a_model_without_an_example_input_asks_for_one_through_the_panel(make_window, qtbot, monkeypatch):
    net = nn.Sequential(nn.Linear(6, 3))
    window = make_window(paramedit.open_session(net))
    qtbot.waitUntil(lambda: window.probes.state().error, timeout=10000)
    message = window.probes.state().message
    assert "no example input" in message and "Input…" in message
    monkeypatch.setattr(prompts, "ask_input_expressions", lambda *_a: ["randn(3, 6)"])
    window.outputs_panel.input_button.click()
    state = outputs_settled(window, qtbot)
    assert state.after.shape == (3, 3) and "randn(3, 6)" in window.outputs_panel.input_label.toolTip()
    assert not state.error


def test_a_newer_change_stops_the_running_probe(make_window, qtbot):
    net = SlowNet(0.0)
    session = paramedit.open_session(net)
    session.example_inputs = (torch.randn(2, 4),)
    window = make_window(session)
    outputs_settled(window, qtbot)
    net.seconds = 0.5
    window.session.stage("fc.bias", "[0]", 1.0)
    action(window, "commitAction").trigger()
    qtbot.waitUntil(lambda: window.probes.running, timeout=5000)
    window.session.stage("fc.bias", "[1]", 2.0)
    action(window, "commitAction").trigger()  # supersedes the probe of the first commit
    state = outputs_settled(window, qtbot)
    expected = direct(net.fc, window.probes.used_inputs[0])
    assert torch.allclose(state.after.scores, expected)  # the outputs of the model after both commits


def test_the_outputs_table_is_a_valid_qt_model(qapp, qtmodeltester):
    from paramedit.qt.probe_table_model import CHANGED_ROLE, PROB_ROLE, ProbeTableModel

    model, x = make_classifier(), classifier_inputs()
    session = paramedit.open_session(model)
    before = session.probe((x,))
    session.stage("2.weight", "[0:5, :]", 0.0)
    session.commit()
    after = session.probe(before.inputs)
    table = ProbeTableModel()
    table.set_results(before, after)
    qtmodeltester.check(table)
    assert table.rowCount() == 4 and table.rowCount(table.index(0, 0)) == 4  # ranks 2-5 under each top-1
    assert table.index(0, 0).data(CHANGED_ROLE) and table.index(0, 2).data(PROB_ROLE) == after.top_k[0][0]["prob"]
    assert table.index(0, 1).data().startswith(str(before.top1[0]))
    conv = paramedit.open_session(nn.Conv2d(1, 2, 1)).probe((torch.randn(1, 1, 3, 3),))  # not classes: stats
    table.set_results(None, conv)
    qtmodeltester.check(table)
    assert [table.index(r, 0).data() for r in range(table.rowCount())] == ["shape", *conv.stats]
    assert table.index(0, 2).data() == "1×2×3×3" and table.index(0, 1).data() is None


class RecordingNet(nn.Module):
    """Records when each forward pass ran and in which mode."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.passes: list[tuple[float, float, bool]] = []
        self.seconds = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        time.sleep(self.seconds)
        out = self.fc(x)
        self.passes.append((start, time.perf_counter(), self.training))
        return out


def test_the_backward_check_waits_for_a_running_probe_and_the_mode_is_kept(make_window, qtbot):
    net = RecordingNet()
    net.train()
    session = paramedit.open_session(net)
    session.example_inputs = (torch.randn(2, 4),)
    window = make_window(session)
    outputs_settled(window, qtbot)
    net.seconds = 0.3
    window.session.stage("fc.bias", "[0]", 1.0)
    action(window, "commitAction").trigger()
    qtbot.waitUntil(lambda: window.probes.running, timeout=5000)
    with qtbot.waitSignal(window.backwardShown, timeout=20000):
        action(window, "backwardAction").trigger()  # while the probe's forward pass runs
    outputs_settled(window, qtbot)
    probe, check = net.passes[-2], net.passes[-1]
    assert probe[1] <= check[0]  # one forward pass after the other, never both at once
    assert not probe[2] and not check[2]  # both in eval mode (the check's default)
    assert net.training and all(not m._forward_pre_hooks for m in net.modules())


def test_weights_changed_outside_the_window_are_probed_again(classifier_window, qtbot):
    """A notebook's in-place step (issue 14) makes the outputs out of date like a commit does."""
    window, model, x = classifier_window
    first = outputs_settled(window, qtbot)
    with torch.no_grad():
        model[2].bias += 3.0  # not through the session
    assert window.session.changed_outside() == {"2.bias"}
    state = outputs_settled(window, qtbot)
    assert state.after is not first.after and torch.allclose(state.after.scores, direct(model, x))
    assert state.change is not None and state.change.max_abs_logit_diff == pytest.approx(3.0, rel=1e-5)
