"""paramedit's layers: core never imports Qt; ``import paramedit`` stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import paramedit

CORE = Path(paramedit.__file__).parent / "core"


def test_core_sources_never_import_qt():
    offenders = []
    for path in CORE.rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                q in stripped for q in ("PySide6", "PyQt", "pyqtgraph", "superqt", "qtpy")
            ):
                offenders.append(f"{path.name}: {stripped}")
    assert offenders == []


def test_using_the_api_does_not_load_qt():
    code = (
        "import sys, torch, paramedit\n"
        "s = paramedit.open_session(torch.nn.Linear(2, 2))\n"
        "s.stage('weight', '[0, 0]', 1.0); s.commit()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
