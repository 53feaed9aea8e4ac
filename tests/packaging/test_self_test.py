"""Issue 6: ``paramedit --self-test`` passes on a working install and names the step that fails."""

from __future__ import annotations

import io

import pytest
from torch import nn

from paramedit.cli import main
from paramedit.core.session import Session
from paramedit.self_test import EDIT_TARGET, run_self_test


def test_self_test_flag_passes_and_prints_versions(qapp, capsys):
    assert main(["--self-test"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("paramedit self-test: PASS"), text
    for needle in ("torch ", "PySide6 ", "Qt ", f"commit: {EDIT_TARGET}", "backward: all"):
        assert needle in text


def test_self_test_fails_when_a_commit_replaces_the_parameter(qapp, monkeypatch):
    """The very bug paramedit exists to prevent must turn the self-test red."""
    commit = Session.commit

    def replacing_commit(self):
        checks = commit(self)
        layer = self.model.get_submodule(EDIT_TARGET.rpartition(".")[0])
        layer.bias = nn.Parameter(layer.bias.detach().clone())
        return checks

    monkeypatch.setattr(Session, "commit", replacing_commit)
    out = io.StringIO()
    assert run_self_test(out) == 1
    assert "FAIL while committing an edit" in out.getvalue()
    assert "no longer the parameter" in out.getvalue()


def test_self_test_takes_no_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--self-test", "inspect", "x.pt"])
    assert exc.value.code == 2
    assert "--self-test takes no command" in capsys.readouterr().err


def test_self_test_never_waits_for_a_dialog(qapp, monkeypatch):
    """Issue 9: a step that asks a question gets the safe answer at once and the self-test fails."""
    import paramedit.self_test as self_test
    from paramedit.qt import prompts

    answers = []

    def asking_step(session, lines):
        answers.append(prompts.ask_unsaved_changes(None, "closing", "1 committed edit(s) are not saved"))

    monkeypatch.setattr(self_test, "_check_backward", asking_step)
    out = io.StringIO()
    assert run_self_test(out) == 1
    assert answers == [prompts.UnsavedChoice.CANCEL]
    text = out.getvalue()
    assert "FAIL" in text and "no one was there to answer" in text and "save your changes before closing" in text
