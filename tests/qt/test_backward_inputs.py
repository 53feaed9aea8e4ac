"""Issue 9: the window's input dialog offers the model's own default and remembers the last input.

It was pre-filled with ``randn(2, 5)`` for every model, wrong for every language model, and a
Hugging Face model, whose config says what it takes, was asked at all.
"""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QInputDialog
from torch import nn

import paramedit
from paramedit.qt import prompts
from paramedit.qt.backward_input_controller import model_key
from paramedit.qt.settings import app_settings, remembered_inputs
from tests.qt.window_helpers import action

REAL_ASK_INPUT_EXPRESSIONS = prompts.ask_input_expressions  # before conftest stubs every ask_*


def _mnist_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))


def _check(window, qtbot, name: str = "backwardAction"):
    with qtbot.waitSignal(window.backwardShown, timeout=30000):
        action(window, name).trigger()
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    return window.session.last_backward


def test_the_dialog_offers_the_model_s_own_default_and_remembers_the_last_input(make_window, qtbot, monkeypatch):
    asked: list[tuple[str, str]] = []
    typed = ["randn(3, 784)"]  # what the user types the first time; afterwards they accept the offer

    def answer(parent, text, source):
        asked.append((text, source))
        return prompts.parse_input_expressions(typed.pop() if typed else text)

    monkeypatch.setattr(prompts, "ask_input_expressions", answer)
    window = make_window(paramedit.open_session(_mnist_mlp()))
    assert _check(window, qtbot).ok
    assert asked == [("randn(2, 784)", "guessed from the model's first layer")]  # not randn(2, 5)
    key = model_key(window.session)
    assert remembered_inputs(key, app_settings()) == ["randn(3, 784)"]

    # Another session of the same model, in a new window: the last input is offered, and says so.
    window2 = make_window(paramedit.open_session(_mnist_mlp()))
    assert _check(window2, qtbot).ok
    assert asked[1] == ("randn(3, 784)", "the last input you gave for this model")
    assert window2.session.input_exprs == ["randn(3, 784)"]

    # A different model of the same class is not offered that input.
    window3 = make_window(paramedit.open_session(nn.Sequential(nn.Linear(20, 4))))
    assert _check(window3, qtbot).ok
    assert asked[2][0] == "randn(2, 20)"


def test_an_input_that_fails_is_offered_again_to_correct_and_not_remembered(make_window, qtbot, monkeypatch):
    window = make_window(paramedit.open_session(_mnist_mlp()))
    monkeypatch.setattr(prompts, "ask_input_expressions", lambda *a: ["randn(2, 7)"])
    with qtbot.waitSignal(window.jobFailed, timeout=30000):
        action(window, "backwardAction").trigger()
    assert remembered_inputs(model_key(window.session), app_settings()) is None
    asked = []
    monkeypatch.setattr(prompts, "ask_input_expressions",
                        lambda parent, text, source: asked.append((text, source)) or ["randn(2, 784)"])
    assert _check(window, qtbot).ok
    assert asked == [("randn(2, 7)", "the input of this session's last check")]


def test_check_with_input_asks_even_when_the_model_has_an_example(make_window, qtbot, monkeypatch):
    session = paramedit.open_session(_mnist_mlp())
    session.example_inputs = (torch.randn(2, 784),)
    window = make_window(session)
    assert _check(window, qtbot).ok  # the example: no question (the conftest stub would raise)
    asked = []
    monkeypatch.setattr(prompts, "ask_input_expressions",
                        lambda parent, text, source: asked.append(text) or ["randn(5, 784)"])
    assert _check(window, qtbot, "backwardInputAction").ok
    assert asked == ["randn(2, 784)"] and window.session.input_exprs == ["randn(5, 784)"]


def test_a_hugging_face_model_runs_on_its_config_s_default_without_asking(make_window, qtbot):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)
    torch.manual_seed(0)
    window = make_window(paramedit.open_session(transformers.GPT2LMHeadModel(config)))
    report = _check(window, qtbot)  # ask_input_expressions is the conftest's failing stub
    assert report.ok
    assert window.session.input_exprs == ["input_ids=randint(50, (1, 16))", "attention_mask=int(ones(1, 16))"]
    assert "trainable parameters received finite" in window.backward_panel.verdict_text()


def test_the_input_dialog_says_where_its_text_comes_from_and_takes_keyword_inputs(qtbot):
    dialog = prompts.input_expressions_dialog(None, "input_ids=randint(50, (1, 16))",
                                              "from the model's config (GPT2LMHeadModel)")
    qtbot.addWidget(dialog)
    assert dialog.textValue() == "input_ids=randint(50, (1, 16))"
    assert "Pre-filled — from the model's config (GPT2LMHeadModel)." in dialog.labelText()
    assert "name=EXPR" in dialog.labelText() and "randn(2, 5)" in dialog.labelText()
    assert prompts.parse_input_expressions(" input_ids=randint(50, (1, 8)) ; attention_mask=int(ones(1, 8));; ") == [
        "input_ids=randint(50, (1, 8))", "attention_mask=int(ones(1, 8))"]


def test_the_real_input_dialog_returns_what_was_typed(qtbot):
    def type_and_accept() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog):
            QTimer.singleShot(10, type_and_accept)
            return
        dialog.setTextValue("randn(1, 3); mask=ones(1, 3)")
        dialog.accept()

    QTimer.singleShot(0, type_and_accept)
    assert REAL_ASK_INPUT_EXPRESSIONS(None, "randn(2, 5)", "an example") == ["randn(1, 3)", "mask=ones(1, 3)"]
