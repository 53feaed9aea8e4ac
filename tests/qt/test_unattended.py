"""Issue 9: no dialog without a screen.

``paramedit open FILE --screenshot PNG`` on a TorchScript archive or a pickled model waited
forever on a modal "Untrusted checkpoint" dialog on the offscreen display (killed after 928 s).
Every question now takes its safe answer when no one is there, the command exits 2 with the
reason, and a watchdog ends a run that passes its timeout.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from torch import nn

import paramedit
from paramedit.core.errors import UntrustedCheckpointError
from paramedit.qt import prompts
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.unattended import TIMEOUT_ENV, Watchdog, running_unattended

#: The real questions, taken before the conftest replaces every ``ask_*`` with a failing stub.
REAL_PROMPTS = {name: getattr(prompts, name) for name in dir(prompts) if name.startswith("ask_")}
ROOT = Path(__file__).resolve().parents[2]

#: Arguments for each question; a new ``ask_*`` without an entry here fails the test below.
PROMPT_ARGS = {
    "ask_unsaved_changes": (None, "closing", "1 committed edit(s) are not saved to a file."),
    "ask_autosave_recovery": (None, "/tmp/autosave.json", {}, 3, 1),
    "ask_staged_before_device_change": (None, 2, "cuda:0"),
    "ask_save_despite_warnings": (None, "/tmp/out.pt", ["the model does not fit the file"]),
    "ask_trust_checkpoint": (None, "/tmp/x.pt", ["os.system"], "x.pt is a TorchScript archive"),
    "ask_run_model_file": (None, "/tmp/model.py"),
    "ask_run_remote_code": (None, "/tmp/folder", ["modeling_tiny.py"]),
    "ask_input_expressions": (None, "randn(2, 5)", "an example"),
    "ask_open_checkpoint": (None, "/tmp"),
    "ask_image_file": (None, "/tmp"),
    "ask_open_checkpoint_folder": (None, "/tmp"),
    "ask_compare_checkpoint": (None, "/tmp"),
    "ask_save_path": (None, "/tmp", "x.safetensors"),
    "ask_export_path": (None, "/tmp"),
    "ask_selection_edit": (None, "w[0]", torch.float32, lambda edit: None, "fill"),
    "ask_open_model": (None, "/tmp"),
    "ask_head_count": (None, "0.weight", "cannot tell how 0.weight splits into heads"),
}
SAFE = {None, False, prompts.UnsavedChoice.CANCEL, prompts.StagedChoice.CANCEL, prompts.RecoveryChoice.LATER}


def _watch_for_dialogs(seen: list[str]) -> QTimer:
    """Close (and record) any modal dialog that opens, so a failing test fails instead of hanging."""
    timer = QTimer()
    timer.setInterval(20)

    def check() -> None:
        box = QApplication.activeModalWidget()
        if box is not None:
            seen.append(type(box).__name__)
            box.close()

    timer.timeout.connect(check)
    timer.start()
    return timer


def test_every_prompt_takes_its_safe_answer_without_a_dialog_when_unattended(qapp):
    assert set(REAL_PROMPTS) == set(PROMPT_ARGS), "a question without a tested safe answer"
    seen: list[str] = []
    timer = _watch_for_dialogs(seen)
    try:
        with running_unattended("test") as run:
            for name, ask in REAL_PROMPTS.items():
                answer = ask(*PROMPT_ARGS[name])
                assert answer == prompts.safe_answer(ask) and answer in SAFE, name
    finally:
        timer.stop()
    assert seen == []
    assert len(run.declined) == len(REAL_PROMPTS)
    assert "x.pt is a TorchScript archive" in run.declined  # core's own words, for the command to print


def _torchscript_file(tmp_path: Path) -> Path:
    path = tmp_path / "vad.pt"
    torch.jit.script(nn.Sequential(nn.Linear(4, 3), nn.ReLU())).save(str(path))
    return path


def _pickled_model_file(tmp_path: Path) -> Path:
    path = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), path)
    return path


def test_the_trust_prompt_calls_a_torchscript_archive_a_torchscript_archive(qapp, tmp_path):
    path = _torchscript_file(tmp_path)
    with pytest.raises(UntrustedCheckpointError) as caught:
        paramedit.open_session(None, path)
    shown: list[str] = []

    def cancel() -> None:
        box = QApplication.activeModalWidget()
        if box is None:
            QTimer.singleShot(10, cancel)
            return
        shown.append(box.text() + "\n" + box.informativeText())
        box.close()

    QTimer.singleShot(0, cancel)
    ask = REAL_PROMPTS["ask_trust_checkpoint"]
    assert ask(None, str(path), caught.value.globals, caught.value.message) is False
    assert "TorchScript archive" in shown[0] and "vad.pt" in shown[0]
    assert "pickle" not in shown[0].lower()
    assert "--trust" not in shown[0]  # core's command-line advice is not a button in a window


def test_the_window_passes_core_s_reason_to_the_trust_prompt(make_window, qtbot, tmp_path, monkeypatch):
    path = _torchscript_file(tmp_path)
    reasons: list[str] = []
    monkeypatch.setattr(prompts, "ask_trust_checkpoint",
                        lambda parent, p, globs, reason: reasons.append(reason) or False)
    window = make_window()
    with qtbot.waitSignal(window.files.loader.cancelled, timeout=20000):
        window.files.open_request(LoadRequest(None, str(path)))
    assert "is a TorchScript archive" in reasons[0]


def test_watchdog_cancelled_in_time_does_nothing():
    with Watchdog(0.05, "must not fire"):
        pass
    time.sleep(0.2)  # still here: os._exit would have ended the test run


def _run(args: list[str], tmp_path: Path, timeout_s: float | None = None, limit: float = 120) -> tuple[int, str, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    env.pop(TIMEOUT_ENV, None)
    if timeout_s is not None:
        env[TIMEOUT_ENV] = str(timeout_s)
    # A fresh settings location: the subprocess must not read or write the user's.
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["HOME"] = str(tmp_path)
    started = time.monotonic()
    done = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=limit)
    return done.returncode, done.stderr, time.monotonic() - started


@pytest.mark.parametrize("make_file", [_torchscript_file, _pickled_model_file], ids=["torchscript", "pickled-model"])
def test_screenshot_of_an_untrusted_file_exits_2_with_the_reason(tmp_path, make_file):
    path = make_file(tmp_path)
    png = tmp_path / "out.png"
    code, err, took = _run(["-m", "paramedit", "open", str(path), "--screenshot", str(png)], tmp_path)
    assert code == 2, err
    assert took < 60
    assert "paramedit did not load it" in err and "--trust" in err and str(path) in err
    if make_file is _torchscript_file:
        assert "TorchScript archive" in err
    assert "opening was cancelled" not in err and "Traceback" not in err
    assert not png.exists()


def test_the_watchdog_ends_a_screenshot_stuck_in_model_code(tmp_path):
    model_file = tmp_path / "slow.py"
    model_file.write_text(textwrap.dedent("""
        import time
        from torch import nn

        class Slow(nn.Linear):
            def __init__(self):
                time.sleep(600)  # a constructor that downloads forever
                super().__init__(4, 3)
    """))
    png = tmp_path / "out.png"
    code, err, took = _run(["-m", "paramedit", "open", f"{model_file}:Slow", "--screenshot", str(png)], tmp_path,
                           timeout_s=3)
    assert code == 2, err
    assert took < 60
    assert "did not finish loading" in err and "gave up after 3 s" in err and TIMEOUT_ENV in err
    assert not png.exists()


def test_the_watchdog_ends_a_self_test_stuck_in_a_step(tmp_path):
    script = ("import sys, time\n"
              "import paramedit.self_test as t\n"
              "t._check_backward = lambda *a: time.sleep(600)\n"
              "sys.exit(t.run_self_test(timeout_s=20))\n")
    code, err, took = _run(["-c", script], tmp_path)
    assert code == 2, err
    assert took < 90
    assert "stuck while running the backward check" in err and "gave up after 20 s" in err


def test_each_prompt_signature_matches_its_test_arguments():
    """The table above calls every question the way the window does (a renamed argument shows here)."""
    for name, ask in REAL_PROMPTS.items():
        inspect.signature(inspect.unwrap(ask)).bind(*PROMPT_ARGS[name])
