"""Issue 5, "unsaved work is never dropped silently": the edit-log autosave replays a crashed session."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import paramedit
from paramedit.core.editing.autosave import (
    AUTOSAVE_SUFFIX,
    EditAutosave,
    default_autosave_path,
    find_autosaves,
    load_autosave,
    replay_autosave,
)
from paramedit.core.errors import EditError

ROOT = Path(__file__).resolve().parents[2]


def bits(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def snapshot(session) -> dict[str, bytes]:
    return {name: bits(session.tensor(name)) for name in session.names()}


def edit_a_lot(s, other: Path) -> None:
    """One of each kind of edit, with values JSON must carry exactly."""
    s.stage("fc.weight", "[0, :]", [0.1, -0.0, float("nan"), 1e-45, -3.4e38])
    s.stage_formula("fc.weight", "[1:, ::2]", "clamp(x * 0.5 + sin(x), -1, 1)")
    s.commit()
    s.stage_init("fc.bias", "[...]", "normal", {"std": 0.02}, seed=7)
    s.commit()
    s.stage_copy("fc.weight", "[2, 1:3]", source=str(other), source_name="fc.weight", source_index="[0, :2]")
    s.commit()
    s.revert("fc.bias")
    s.stage("fc.bias", "[1]", torch.tensor(0.333333343267))  # a 0-d tensor value
    s.commit()
    s.stage("fc.bias", "[2]", 5.0)
    s.commit()
    s.undo()  # undone work is not replayed


def test_every_change_rewrites_the_autosave(models_py, linear_ckpt, tmp_path) -> None:
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    auto = EditAutosave(s, tmp_path / f"net{AUTOSAVE_SUFFIX}", extra_context={"model_kwargs": {"n_out": 3}})
    assert not auto.path.exists()

    s.stage("fc.bias", "[...]", 1.0)
    # Issue 13: staged edits are autosaved too (a crash no longer loses them), but not as commits.
    assert load_autosave(auto.path)[1] == []
    s.commit()
    context, edits = load_autosave(auto.path)
    assert [e.to_json() for e in edits] == [{"op": "set", "target": "fc.bias", "index": "[...]", "value": 1.0}]
    assert context["model_spec"] == f"{models_py}:Net"
    assert context["checkpoint"] == str(linear_ckpt.resolve())
    assert context["device"] == "cpu" and context["event"] == "committed" and context["unsaved"]
    assert context["model_kwargs"] == {"n_out": 3} and context["pid"] == os.getpid()
    assert context["trusted"] is False and context["timestamp"]

    s.undo()
    assert load_autosave(auto.path)[1] == [] and load_autosave(auto.path)[0]["event"] == "undone"
    s.redo()
    assert len(load_autosave(auto.path)[1]) == 1
    out = s.save(tmp_path / "edited.safetensors")
    context, _ = load_autosave(auto.path)
    assert context["event"] == "saved" and context["saved_to"] == str(out) and context["unsaved"] is False
    assert auto.writes == 5 and auto.last_error is None

    auto.close(remove=True)
    assert not auto.path.exists()
    s.stage("fc.bias", "[0]", 2.0)
    s.commit()
    assert not auto.path.exists(), "a closed autosave no longer listens"


def test_crashed_session_replays_bit_identical(models_py, linear_ckpt, tmp_path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.randn(3, 5), "fc.bias": torch.randn(3)}, other)
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    EditAutosave(s, default_autosave_path(tmp_path, s))
    edit_a_lot(s, other)
    expected = snapshot(s)
    del s  # the crash: nothing is closed, nothing is saved
    gc.collect()

    (found,) = find_autosaves(tmp_path)
    context, _ = load_autosave(found)
    fresh = paramedit.open_session(context["model_spec"], context["checkpoint"], device=context["device"])
    assert snapshot(fresh) != expected
    replay_autosave(fresh, found)
    assert snapshot(fresh) == expected
    fresh.undo()  # the replay is one undoable step
    assert snapshot(fresh) == snapshot(paramedit.open_session(f"{models_py}:Net", linear_ckpt))


def test_a_process_killed_mid_session_is_replayed(models_py, linear_ckpt, tmp_path) -> None:
    """A real crash: the editing process kills itself with SIGKILL after its last commit."""
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, torch, paramedit
        from paramedit.core.editing.autosave import EditAutosave
        s = paramedit.open_session({f"{models_py}:Net"!r}, {str(linear_ckpt)!r})
        EditAutosave(s, {str(tmp_path / "crash.paramedit-autosave.json")!r})
        s.stage_formula("fc.weight", "[...]", "x * 3 - 1")
        s.commit()
        s.stage_init("fc.bias", "[...]", "uniform", seed=3)
        s.commit()
        torch.save({{n: s.tensor(n).detach().clone() for n in s.names()}}, {str(tmp_path / "truth.pt")!r})
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()

    fresh = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    replay_autosave(fresh, find_autosaves(tmp_path)[0])
    truth = torch.load(tmp_path / "truth.pt", weights_only=True)
    assert snapshot(fresh) == {n: bits(t) for n, t in truth.items()}


def test_a_failing_autosave_never_stops_editing(models_py, linear_ckpt, tmp_path, caplog) -> None:
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    auto = EditAutosave(s, tmp_path / "gone" / f"x{AUTOSAVE_SUFFIX}")
    s.stage("fc.bias", "[0]", 4.0)
    s.commit()
    assert s.tensor("fc.bias")[0].item() == 4.0
    assert auto.last_error is not None and "does not exist" in auto.last_error.message
    assert "autosave" in caplog.text
    (tmp_path / "gone").mkdir()
    s.undo()
    assert auto.last_error is None and auto.path.exists()


def test_relative_copy_sources_are_stored_absolute(models_py, linear_ckpt, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.save({"fc.weight": torch.ones(3, 5)}, tmp_path / "src.pt")
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    auto = EditAutosave(s, tmp_path / f"a{AUTOSAVE_SUFFIX}")
    s.stage_copy("fc.weight", "[...]", source="src.pt")
    s.commit()
    (edit,) = load_autosave(auto.path)[1]
    assert edit.source == str(tmp_path / "src.pt")


def test_replay_refuses_another_checkpoint(models_py, linear_ckpt, tmp_path) -> None:
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    auto = EditAutosave(s, tmp_path / f"a{AUTOSAVE_SUFFIX}")
    s.stage("fc.bias", "[0]", 1.0)
    s.commit()
    torch.save({"fc.weight": torch.zeros(3, 5), "fc.bias": torch.zeros(3)}, tmp_path / "different.pt")
    other = paramedit.open_session(f"{models_py}:Net", tmp_path / "different.pt")
    before = snapshot(other)
    with pytest.raises(EditError, match="was made on checkpoint"):
        replay_autosave(other, auto.path)
    assert snapshot(other) == before
    replay_autosave(other, auto.path, check_checkpoint=False)
    assert other.tensor("fc.bias")[0].item() == 1.0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not readable JSON"),
        ("[]", "not a paramedit autosave"),
        (json.dumps({"format": "paramedit.edits", "version": 1, "edits": []}), "not a paramedit autosave"),
        (json.dumps({"format": "paramedit.autosave", "version": 99, "context": {}}), "version 99"),
        (json.dumps({"format": "paramedit.autosave", "version": 1, "context": "x"}), "no 'context'"),
        (json.dumps({"format": "paramedit.autosave", "version": 1, "context": {}}), "not a paramedit edit log"),
        (json.dumps({"format": "paramedit.autosave", "version": 1, "context": {},
                     "edit_log": {"format": "paramedit.edits", "version": 1,
                                  "edits": [{"op": "explode", "target": "x"}]}}), "unknown edit op"),
        ("[" * 100_000, "not readable JSON"),
    ],
)
def test_damaged_autosaves_are_edit_errors(tmp_path, content, problem) -> None:
    path = tmp_path / f"bad{AUTOSAVE_SUFFIX}"
    path.write_text(content)
    with pytest.raises(EditError, match=problem):
        load_autosave(path)


def test_find_autosaves_newest_first_and_only_autosaves(tmp_path) -> None:
    old = tmp_path / f"old{AUTOSAVE_SUFFIX}"
    new = tmp_path / f"new{AUTOSAVE_SUFFIX}"
    for i, path in enumerate((old, new)):
        path.write_text("{}")
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))
    (tmp_path / "edits.json").write_text("{}")
    (tmp_path / f"link{AUTOSAVE_SUFFIX}").symlink_to(old)
    assert find_autosaves(tmp_path) == [new, old]
    assert find_autosaves(tmp_path / "missing") == []
    with pytest.raises(EditError, match="does not exist"):
        load_autosave(tmp_path / "missing.json")


def test_recovery_gives_back_each_commit_as_an_undo_step_and_the_staged_edits(tmp_path):
    """Issue 13: recovery brought three commits back as one undo step and lost the staged edits."""
    import torch

    import paramedit
    from paramedit.core.editing.autosave import EditAutosave, recover_autosave

    torch.save({"w": torch.zeros(4, 4)}, tmp_path / "w.pt")
    s = paramedit.open_session(None, tmp_path / "w.pt")
    autosave = EditAutosave(s, tmp_path / "x.paramedit-autosave.json")
    for i in range(3):
        s.stage("w", f"[{i}, :]", float(i + 1))
        s.commit()
    s.stage("w", "[3, 0]", 9.0)  # staged, not committed: autosaved too
    fresh = paramedit.open_session(None, tmp_path / "w.pt")
    recovered = recover_autosave(fresh, autosave.path)
    assert (recovered.commits, recovered.edits, recovered.staged) == (3, 3, 1)
    assert "3 commit(s)" in recovered.describe()
    assert len(fresh.history.records) == 3 and len(fresh.staged) == 1
    w = fresh.tensor("w")
    assert [float(w[i, 0]) for i in range(4)] == [1.0, 2.0, 3.0, 0.0]  # the staged one is not written yet
    fresh.undo()
    assert float(w[2, 0]) == 0.0 and float(w[1, 0]) == 2.0  # one commit undone, not all three


def test_the_autosave_of_a_paramedit_still_running_is_not_offered(tmp_path) -> None:
    """Found by review: a second paramedit offered to recover (or discard) the first one's live
    autosave. A process that exists keeps its file; one that has gone leaves a crash to recover."""
    import subprocess
    import sys

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    try:
        live = tmp_path / f"model.pt.20261203-120000.{alive.pid}{AUTOSAVE_SUFFIX}"
        crashed = tmp_path / f"model.pt.20261203-110000.{int(gone.stdout)}{AUTOSAVE_SUFFIX}"
        mine = tmp_path / f"model.pt.20261203-100000.{os.getpid()}{AUTOSAVE_SUFFIX}"
        for path in (live, crashed, mine):
            path.write_text("{}")
        assert set(find_autosaves(tmp_path)) == {crashed, mine}
    finally:
        alive.kill()
        alive.wait()
    assert set(find_autosaves(tmp_path)) == {live, crashed, mine}
