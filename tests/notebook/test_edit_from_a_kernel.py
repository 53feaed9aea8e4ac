"""Issue 14: the window on a live model, from a real Jupyter kernel and from a plain script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    """
    import torch
    from torch import nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    weight = model[0].weight
    """,
    """
    import paramedit
    s = paramedit.edit(model)
    assert s.model is model
    """,
    """
    s.stage("0.weight", "[1, 2]", 0.25)
    s.commit()
    assert model[0].weight is weight and float(model[0].weight[1, 2]) == 0.25
    assert opt.param_groups[0]["params"][0] is weight
    """,
    """
    import time
    from PySide6.QtWidgets import QApplication
    from paramedit.notebook import _windows
    window = _windows[-1]
    window.tree.select_name("0.weight")
    model(torch.randn(8, 4)).sum().backward()
    opt.step()
    stepped = float(model[0].weight[1, 2])
    assert stepped != 0.25
    table = window.editor.model
    deadline = time.monotonic() + 10
    shown = None
    while time.monotonic() < deadline:
        QApplication.processEvents()
        window.editor.table.prefetch_visible()
        shown = table.data(table.index(1, 2))
        if shown is not None and float(shown) != 0.25 and abs(float(shown) - stepped) < 1e-3:
            break  # the table shows a few digits: the stepped value, not the committed 0.25
        time.sleep(0.05)
    assert shown is not None and abs(float(shown) - stepped) < 1e-3, (shown, stepped)
    """,
    """
    report = s.run_backward(inputs=(torch.randn(2, 4),))
    assert report.ok and model[0].weight is weight
    print("all cells passed")
    """,
]


def _kernel_env(tmp_path: Path) -> dict[str, str]:
    """A kernel spec that runs this very Python (the one the tests run in), headless."""
    spec = tmp_path / "kernels" / "paramedit-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "paramedit test", "language": "python"}))
    return {"JUPYTER_PATH": str(tmp_path), "QT_QPA_PLATFORM": "offscreen", "JUPYTER_PLATFORM_DIRS": "1",
            "IPYTHONDIR": str(tmp_path / "ipython")}


@pytest.mark.slow
def test_a_notebook_edits_a_live_model_in_the_window_and_sees_its_optimizer_step(tmp_path, monkeypatch):
    for key, value in _kernel_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in CELLS])
    client = nbclient.NotebookClient(nb, kernel_name="paramedit-test", timeout=120, allow_errors=False)
    client.execute()
    outputs = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "all cells passed" in outputs


SCRIPT = """
import torch
from torch import nn
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import paramedit
from paramedit.qt.app import application

model = nn.Linear(3, 2)
app = application()
def close_it():
    from paramedit.notebook import _windows
    _windows[-1].close()
QTimer.singleShot(800, close_it)
s = paramedit.edit(model, block=True)
print("returned after the window closed", s.model is model)
s2 = paramedit.edit(model, block=False)
print("returned at once", s2.model is model)
"""


def test_a_script_blocks_until_the_window_closes(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PARAMEDIT_SETTINGS_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "returned after the window closed True" in result.stdout and "returned at once True" in result.stdout


def test_bad_input_is_a_clear_message():
    import paramedit
    from paramedit.core.errors import ParameditError

    with pytest.raises(ParameditError, match=r"takes an nn\.Module or a paramedit Session"):
        paramedit.edit("model.pt")
    from torch import nn

    with pytest.raises(ParameditError, match="has no parameters"):
        paramedit.edit(nn.ReLU())
