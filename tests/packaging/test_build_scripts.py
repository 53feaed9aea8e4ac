"""Issue 6: the packaging scripts and the PyInstaller spec at least parse (building takes minutes:
``packaging/build.sh`` is run by a maintainer or a CI job, not by the test suite)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


@pytest.mark.parametrize("script", ["build.sh", "install_desktop.sh", "render_icons.sh"])
def test_shell_scripts_parse(script):
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    done = subprocess.run(["bash", "-n", str(PACKAGING / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_spec_and_entry_point_are_valid_python():
    for name in ("paramedit.spec", "paramedit_main.py"):
        compile((PACKAGING / name).read_text(), name, "exec")


def test_spec_keeps_cuda_out_unless_asked():
    spec = (PACKAGING / "paramedit.spec").read_text()
    assert 'os.environ.get("PARAMEDIT_CUDA", "0") == "1"' in spec
    for pattern in ("*libcudnn*", "*libnccl*", "nvidia/*", "*libtorch_cuda*"):
        assert f'"{pattern}"' in spec
