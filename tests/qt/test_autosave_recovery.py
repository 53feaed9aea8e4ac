"""Issue 5, item 7: committed edits survive a crash through the autosaved edit log.

Issue 13: a recovery gives back each commit as its own undo step and the staged edits, after a
Recover / Discard / Later question, and says what it restored in a note that stays.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from paramedit.core.editing.autosave import find_autosaves
from paramedit.demo import demo_checkpoint, demo_model_spec
from paramedit.qt import prompts
from paramedit.qt.autosave_controller import autosave_folder
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.unattended import running_unattended
from tests.qt.window_helpers import action

REAL_ASK_AUTOSAVE_RECOVERY = prompts.ask_autosave_recovery  # before conftest stubs every ask_*


def test_commit_is_autosaved_and_a_clean_close_removes_it(make_window, demo_session, monkeypatch):
    window = make_window(demo_session)
    demo_session.stage("mlp.0.bias", "[0]", 0.25)
    window.commit()
    path = window.autosave.path
    assert path is not None and path.exists()
    assert '"mlp.0.bias"' in path.read_text()
    monkeypatch.setattr(prompts, "ask_unsaved_changes", lambda *a, **k: prompts.UnsavedChoice.DISCARD)
    window.close()
    assert not path.exists()


def test_after_a_crash_the_next_start_replays_the_edits(make_window, demo_session, qtbot, monkeypatch):
    crashed = make_window(demo_session)
    demo_session.stage("mlp.0.weight", "[1, 2]", 7.5)
    demo_session.stage("mlp.0.bias", "[...]", 0.0)
    crashed.commit()
    expected = {n: demo_session.tensor(n).detach().clone() for n in ("mlp.0.weight", "mlp.0.bias")}
    assert len(find_autosaves(autosave_folder())) == 1
    crashed.autosave._autosave = None  # a crash: nobody removes the file

    asked = []
    monkeypatch.setattr(prompts, "ask_autosave_recovery",
                        lambda *a, **k: asked.append(a[3:]) or prompts.RecoveryChoice.RECOVER)
    monkeypatch.setattr(prompts, "ask_run_model_file", lambda *a, **k: True)
    fresh = make_window(None)
    with qtbot.waitSignal(fresh.sessionOpened, timeout=20_000):
        assert fresh.autosave.offer_recovery()
    qtbot.waitUntil(lambda: fresh.session is not None and fresh.session.can_undo, timeout=5000)
    assert asked == [(1, 0)]  # one commit (of two edits), nothing staged
    for name, values in expected.items():
        assert torch.equal(fresh.session.tensor(name).detach(), values)
    fresh.session.undo()  # one undoable step
    assert fresh.session.tensor("mlp.0.bias").abs().sum() > 0
    assert [p for p in find_autosaves(autosave_folder()) if p != fresh.autosave.path] == []


def test_no_autosave_means_no_question(make_window):
    window = make_window(None)
    assert window.autosave.offer_recovery() is False


# ---------------------------------------------------------------- issue 13: the whole history back

EDITS = [("mlp.0.weight", "[1, 2]", 7.5), ("mlp.0.bias", "[...]", 0.0), ("norm.bias", "[0]", -2.0)]


def _crash_after_three_commits_and_a_staged_edit(make_window, demo_session) -> tuple[Path, dict]:
    """Three commits and one staged edit with autosave on, then a crash: nobody removes the file."""
    crashed = make_window(demo_session)
    originals = {n: demo_session.tensor(n).detach().clone() for n, _i, _v in EDITS}
    for name, index, value in EDITS:
        demo_session.stage(name, index, value)
        action(crashed, "commitAction").trigger()
    demo_session.stage("mlp.2.bias", "[0]", 4.0)
    path = crashed.autosave.path
    assert path is not None and path.exists()
    crashed.autosave._autosave = None
    return path, originals


def _answer(text: str, shown: list[str]) -> None:
    """Click the button called ``text`` of the next message box, as a person would."""
    tries = [0]

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            tries[0] += 1
            if tries[0] < 500:
                QTimer.singleShot(10, click)
            return
        shown.append(f"{box.text()}\n{box.informativeText()}")
        [button] = [b for b in box.buttons() if b.text().replace("&", "") == text]
        button.click()

    QTimer.singleShot(0, click)


def _start_like_app(make_window, qtbot):
    """What paramedit.qt.app.run_app does: a window, the recovery question, else the demo."""
    window = make_window(None)
    request = LoadRequest(demo_model_spec(), str(demo_checkpoint()))
    with qtbot.waitSignal(window.sessionOpened, timeout=20_000):
        if not window.autosave.offer_recovery():
            assert window.files.open_request(request)
    return window


def test_recover_gives_back_each_commit_as_an_undo_step_and_the_staged_edit(make_window, demo_session, qtbot,
                                                                            monkeypatch):
    old, originals = _crash_after_three_commits_and_a_staged_edit(make_window, demo_session)
    expected = {n: demo_session.tensor(n).detach().clone() for n, _i, _v in EDITS}
    monkeypatch.setattr(prompts, "ask_autosave_recovery", REAL_ASK_AUTOSAVE_RECOVERY)
    monkeypatch.setattr(prompts, "ask_run_model_file", lambda *a, **k: True)
    shown: list[str] = []
    _answer("Recover", shown)
    window = _start_like_app(make_window, qtbot)

    assert "Recover 3 commits and 1 staged edit" in shown[0] and old.name in shown[0]
    s = window.session
    assert len(s.history.records) == 3 and [len(r.edits) for r in s.history.records] == [1, 1, 1]
    assert [e.describe() for e in s.staged] == ["set mlp.2.bias[0] = 4.0"]
    for name, values in expected.items():
        assert torch.equal(s.tensor(name).detach(), values)
    assert not old.exists()  # recovered: the new session has its own autosave
    notice = window.autosave.notice
    assert notice.isVisible()
    assert notice.message.startswith("Restored 3 commits (3 undo steps) and 1 staged edit from the autosave of ")
    window.show_message("something else")  # the status bar moves on; the note stays
    QApplication.processEvents()
    assert notice.isVisible() and notice.message.startswith("Restored 3 commits")
    assert window.staged_panel.staged_list.count() == 1
    assert window.staged_panel.history_list.count() == 3

    for _ in range(3):
        action(window, "undoAction").trigger()
    assert not s.can_undo
    for name, values in originals.items():
        assert torch.equal(s.tensor(name).detach(), values)


def test_discard_deletes_the_autosave_and_nothing_is_asked_next_time(make_window, demo_session, qtbot, monkeypatch):
    old, _ = _crash_after_three_commits_and_a_staged_edit(make_window, demo_session)
    monkeypatch.setattr(prompts, "ask_autosave_recovery", REAL_ASK_AUTOSAVE_RECOVERY)
    shown: list[str] = []
    _answer("Discard", shown)
    window = _start_like_app(make_window, qtbot)
    assert len(shown) == 1 and not old.exists()
    assert not window.session.can_undo and not window.session.staged  # the demo, as opened
    assert not window.autosave.notice.isVisible()

    asked: list[tuple] = []
    monkeypatch.setattr(prompts, "ask_autosave_recovery", lambda *a: asked.append(a) or prompts.RecoveryChoice.LATER)
    _start_like_app(make_window, qtbot)
    assert asked == []


def test_later_keeps_the_autosave_and_asks_again(make_window, demo_session, qtbot, monkeypatch):
    old, _ = _crash_after_three_commits_and_a_staged_edit(make_window, demo_session)
    monkeypatch.setattr(prompts, "ask_autosave_recovery", REAL_ASK_AUTOSAVE_RECOVERY)
    shown: list[str] = []
    _answer("Later", shown)
    first = _start_like_app(make_window, qtbot)
    assert len(shown) == 1 and old.exists()
    assert not first.session.can_undo and not first.autosave.notice.isVisible()

    _answer("Later", shown)
    _start_like_app(make_window, qtbot)
    assert len(shown) == 2 and old.exists()


def test_unattended_the_autosave_is_kept_and_nothing_blocks(make_window, demo_session, monkeypatch):
    old, _ = _crash_after_three_commits_and_a_staged_edit(make_window, demo_session)
    monkeypatch.setattr(prompts, "ask_autosave_recovery", REAL_ASK_AUTOSAVE_RECOVERY)
    window = make_window(None)
    with running_unattended("test") as run:
        assert window.autosave.offer_recovery() is False
    assert old.exists() and len(run.declined) == 1 and str(old) in run.declined[0]
