"""Issue 5, item 7: committed edits survive a crash through the autosaved edit log."""

from __future__ import annotations

import torch

from paramedit.core.editing.autosave import find_autosaves
from paramedit.qt import prompts
from paramedit.qt.autosave_controller import autosave_folder


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
    monkeypatch.setattr(prompts, "ask_recover_autosave", lambda *a, **k: asked.append(a[3]) or True)
    monkeypatch.setattr(prompts, "ask_run_model_file", lambda *a, **k: True)
    fresh = make_window(None)
    with qtbot.waitSignal(fresh.sessionOpened, timeout=20_000):
        assert fresh.autosave.offer_recovery()
    qtbot.waitUntil(lambda: fresh.session is not None and fresh.session.can_undo, timeout=5000)
    assert asked == [2]
    for name, values in expected.items():
        assert torch.equal(fresh.session.tensor(name).detach(), values)
    fresh.session.undo()  # one undoable step
    assert fresh.session.tensor("mlp.0.bias").abs().sum() > 0
    assert [p for p in find_autosaves(autosave_folder()) if p != fresh.autosave.path] == []


def test_no_autosave_means_no_question(make_window):
    window = make_window(None)
    assert window.autosave.offer_recovery() is False
