#!/usr/bin/env bash
# Build the one-folder desktop app dist/paramedit/ with PyInstaller, then self-test it.
#
#   packaging/build.sh                      CPU build in a fresh build venv (build/bundle-venv)
#   PARAMEDIT_CUDA=1 packaging/build.sh     keep CUDA libraries (needs a CUDA torch, see README)
#
# Environment:
#   PYTHON                  interpreter for the build venv (default: python3)
#   PARAMEDIT_BUILD_VENV    where the build venv goes (default: build/bundle-venv);
#                           "current" builds from the running environment instead
#   PARAMEDIT_TORCH         pip arguments that install torch (default: the CPU build from
#                           download.pytorch.org; with PARAMEDIT_CUDA=1: torch from PyPI, a CUDA build)
#   PARAMEDIT_PYINSTALLER   pip requirement for PyInstaller (default: pyinstaller>=6.10)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$(date +%s)

venv="${PARAMEDIT_BUILD_VENV:-build/bundle-venv}"
if [[ "${PARAMEDIT_CUDA:-0}" == 1 ]]; then
    torch_args="${PARAMEDIT_TORCH:-torch}"
else
    torch_args="${PARAMEDIT_TORCH:-torch --index-url https://download.pytorch.org/whl/cpu}"
fi

if [[ "$venv" == current ]]; then
    python="${PYTHON:-python3}"
    echo "== building from the current environment ($("$python" -c 'import sys; print(sys.prefix)'))"
else
    # A venv of its own keeps a busy development environment's packages out of the bundle.
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "== creating the build venv $venv"
        "${PYTHON:-python3}" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
    fi
    python="$(cd "$venv" && pwd)/bin/python"  # absolute: PyInstaller runs from build/
    if ! "$python" -c "import torch" 2>/dev/null; then
        echo "== installing torch: pip install $torch_args"
        # shellcheck disable=SC2086  # torch_args is a list of pip arguments
        "$python" -m pip install --quiet $torch_args
    fi
    echo "== installing paramedit (not editable: the bundle takes it as the wheel lays it out)"
    "$python" -m pip install --quiet .
    "$python" -m pip install --quiet --force-reinstall --no-deps .
fi
"$python" -m pip install --quiet "${PARAMEDIT_PYINSTALLER:-pyinstaller>=6.10}"
prepared=$(date +%s)

echo "== PyInstaller"
rm -rf dist/paramedit
# From build/, so that neither PyInstaller nor its helper processes import the paramedit of the
# source tree (the current directory is on their sys.path) instead of the installed one.
mkdir -p build
(cd build && "$python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$root/dist" --workpath "$root/build/pyinstaller" "$root/packaging/paramedit.spec")
built=$(date +%s)

echo "== self-test of the frozen app"
(cd /tmp && QT_QPA_PLATFORM=offscreen "$root/dist/paramedit/paramedit" --self-test)
tested=$(date +%s)

echo "== done"
echo "bundle:   $(du -sh dist/paramedit | cut -f1)  ($(find dist/paramedit -type f | wc -l) files)"
echo "versions: $("$python" -c 'import torch, PySide6; print(f"torch {torch.__version__}, PySide6 {PySide6.__version__}")')"
echo "time:     environment $((prepared - started)) s, PyInstaller $((built - prepared)) s," \
     "self-test $((tested - built)) s, total $((tested - started)) s"
