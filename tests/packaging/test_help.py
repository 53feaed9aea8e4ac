"""Issue 6: ``--version``, ``--help`` and every command's help exit 0 and name their key options."""

from __future__ import annotations

import pytest

from paramedit import __version__
from paramedit.cli import main

KEY_OPTIONS = {
    (): ["--version", "--self-test", "open", "inspect", "check", "apply", "examples:"],
    ("open",): ["MODEL_SPEC", "CHECKPOINT", "--device", "--demo", "--screenshot", "--trust", "default: cpu"],
    ("inspect",): ["CHECKPOINT", "--model", "--json", "--key", "examples:"],
    ("check",): ["--model", "--checkpoint", "--input", "--input-shape", "--reduction", "--train", "Exit 0"],
    ("apply",): ["EDITS.json", "--output", "--in-place", "--model", "examples:"],
}


@pytest.mark.parametrize("command", list(KEY_OPTIONS), ids=lambda c: " ".join(c) or "paramedit")
def test_help_exits_zero_and_names_the_key_options(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    missing = [option for option in KEY_OPTIONS[command] if option not in text]
    assert not missing, f"help of {' '.join(command) or 'paramedit'} lacks {missing}"
    prog = " ".join(("paramedit", *command))
    assert text.startswith(f"usage: {prog} ")


def test_version_names_paramedit_and_torch(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"paramedit {__version__} (")
    assert "torch " in line and "Python " in line
