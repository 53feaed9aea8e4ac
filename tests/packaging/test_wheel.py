"""Issue 6: the wheel carries its resources and the installed app runs from outside the source tree.

The wheel is built from a copy of the project (so the build never writes into the checkout and
two runs cannot collide), installed with ``--no-deps`` into a fresh virtual environment, and run
from a scratch folder. torch, PySide6 and the rest are reused from the environment running the
tests through a ``.pth`` file written after the install — not ``--system-site-packages``, which
names the *base* interpreter's site and so misses what CI installs into its own venv, and which
would also expose an editable install of paramedit (its finder lives in a ``.pth`` there).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.packaging.png_checks import distinct_colours, png_size

ROOT = Path(__file__).resolve().parents[2]
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)
EXPECTED_IN_WHEEL = [
    "paramedit/resources/demo/demo_model.py",
    "paramedit/resources/demo/demo.safetensors",
    "paramedit/resources/icons/paramedit.svg",
    *(f"paramedit/resources/icons/paramedit-{n}.png" for n in ICON_SIZES),
    "paramedit/qt/main_window.py",
    "paramedit/self_test.py",
]

pytestmark = pytest.mark.slow


def _copy_project(dest: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("paramedit", "resources"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _outer_site_dirs() -> list[str]:
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return dirs


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    # HOME and XDG_CONFIG_HOME: the app's QSettings must not land in the real user's profile.
    env.update(QT_QPA_PLATFORM="offscreen", PYTHONNOUSERSITE="1", HOME=str(home),
               XDG_CONFIG_HOME=str(home / ".config"))
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build sdist and wheel, install the wheel into a fresh venv; paths of sdist, wheel, venv, scratch."""
    # The build runs without isolation so that it downloads nothing; that needs the setuptools
    # the project's build-system asks for in this environment.
    pytest.importorskip("setuptools", minversion="69", reason="building without isolation needs setuptools>=69")
    base = tmp_path_factory.mktemp("wheel")
    source = _copy_project(base / "source")
    # sdist first, then the wheel from the unpacked sdist, as `python -m build` does: this proves
    # the sdist carries the resources too. setuptools is called directly, so nothing is downloaded.
    _run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(base / 'dist')!r})"],
         cwd=source, timeout=180)
    sdist = next((base / "dist").glob("paramedit-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        # The "data" filter exists from Python 3.10.12 / 3.11.4 on; our own sdist is trusted anyway.
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(base / "unpacked", **kwargs)
    unpacked = next((base / "unpacked").iterdir())
    _run([sys.executable, "-m", "pip", "wheel", str(unpacked), "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", str(base / "dist")], cwd=base, timeout=180)
    wheel = next((base / "dist").glob("paramedit-*.whl"))

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--force-reinstall",
          "--no-index", "-q", str(wheel)], cwd=base, timeout=180)
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base)
    (Path(purelib.strip()) / "_paramedit_test_reuse.pth").write_text("\n".join(_outer_site_dirs()) + "\n")

    outside = base / "outside"
    (outside / "home").mkdir(parents=True)
    return {"sdist": sdist, "wheel": wheel, "venv": venv, "outside": outside}


def test_wheel_carries_the_demo_and_the_icons(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    missing = [name for name in EXPECTED_IN_WHEEL if name not in names]
    assert not missing, f"the wheel lacks {missing}"


def test_sdist_carries_the_demo_and_the_icons(installed):
    with tarfile.open(installed["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = [name.replace("paramedit/resources/", "resources/") for name in EXPECTED_IN_WHEEL]
    missing = [name for name in wanted if name not in names]
    assert not missing, f"the sdist lacks {missing}"


def test_installed_copy_is_imported_from_the_venv(installed):
    venv, outside = installed["venv"], installed["outside"]
    code = ("import paramedit, paramedit.demo, torch, PySide6; "
            "print(paramedit.__file__); print(paramedit.demo.demo_checkpoint())")
    out = _run([str(venv / "bin" / "python"), "-c", code], cwd=outside, env=_clean_env(outside / "home"))
    module_file, checkpoint = (Path(line) for line in out.split())
    assert module_file.is_relative_to(venv), f"paramedit came from {module_file}, not the venv"
    assert not module_file.is_relative_to(ROOT)
    assert checkpoint.is_relative_to(venv) and checkpoint.is_file()


def test_installed_app_takes_a_screenshot_of_the_demo(installed):
    venv, outside = installed["venv"], installed["outside"]
    assert not outside.is_relative_to(ROOT)
    shot = outside / "out.png"
    _run([str(venv / "bin" / "paramedit"), "--demo", "--screenshot", str(shot)], cwd=outside,
         env=_clean_env(outside / "home"), timeout=180)
    width, height = png_size(shot)
    assert width >= 800 and height >= 500, f"screenshot is only {width}x{height}"
    assert distinct_colours(shot) >= 20, "the screenshot is (nearly) one colour: the window was not drawn"


def test_installed_app_passes_its_self_test(installed):
    venv, outside = installed["venv"], installed["outside"]
    out = _run([str(venv / "bin" / "paramedit"), "--self-test"], cwd=outside,
               env=_clean_env(outside / "home"), timeout=180)
    assert "PASS" in out
