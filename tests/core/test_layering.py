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


# core's folders, lowest first: a module imports (at run time) only from its own folder, a lower
# one, or the shared base (errors, events). The session and opening sit on top of them all.
CORE_LAYERS = ["checkpoints", "editing", "model", "analysis"]
BASE = {"paramedit.core.errors", "paramedit.core.events"}


def _runtime_imports(path: Path) -> list[str]:
    """paramedit modules ``path`` imports outside ``if TYPE_CHECKING:`` blocks."""
    import ast

    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("paramedit"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("paramedit"))
    return found


def test_core_folders_import_only_downwards():
    offenders = []
    for rank, layer in enumerate(CORE_LAYERS):
        allowed = {f"paramedit.core.{name}" for name in CORE_LAYERS[: rank + 1]}
        for path in sorted((CORE / layer).glob("*.py")):
            for module in _runtime_imports(path):
                if module in BASE or any(module == a or module.startswith(a + ".") for a in allowed):
                    continue
                offenders.append(f"{layer}/{path.name} imports {module}")
    assert offenders == []


def test_core_is_grouped_into_folders():
    """The top of core holds only the session and what every folder shares (issue 10's layout)."""
    top = sorted(p.name for p in CORE.glob("*.py"))
    assert top == ["__init__.py", "errors.py", "events.py", "opening.py", "session.py", "tensor_store.py",
                   "tensor_tree.py"]
    assert sorted(p.name for p in CORE.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(CORE_LAYERS)
