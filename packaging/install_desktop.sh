#!/usr/bin/env bash
# Put paramedit in the desktop menu and make it the opener of .pt/.pth/.ckpt/.safetensors files.
#
#   packaging/install_desktop.sh                                  for the `paramedit` on PATH (pip install)
#   packaging/install_desktop.sh "$PWD/dist/paramedit/paramedit"  for the frozen app
#
# Installs into PREFIX (default ~/.local, i.e. for this user only; PREFIX=/usr/local as root for all).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
icons="$here/../resources/icons"
command="${1:-paramedit}"
prefix="${PREFIX:-$HOME/.local}"
share="$prefix/share"

mkdir -p "$share/applications" "$share/mime/packages" "$share/metainfo" "$share/icons/hicolor/scalable/apps"
exec_command="$command"
[[ "$command" == *" "* ]] && exec_command="\"$command\""  # Exec= quotes a path with spaces
sed "s|^Exec=paramedit |Exec=$exec_command |; s|^TryExec=paramedit$|TryExec=$command|" \
    "$here/paramedit.desktop" > "$share/applications/paramedit.desktop"
cp "$here/paramedit-mime.xml" "$share/mime/packages/paramedit.xml"
cp "$here/io.github.paramedit.Paramedit.metainfo.xml" "$share/metainfo/"
cp "$icons/paramedit.svg" "$share/icons/hicolor/scalable/apps/paramedit.svg"
for size in 16 32 48 64 128 256 512; do
    mkdir -p "$share/icons/hicolor/${size}x${size}/apps"
    cp "$icons/paramedit-$size.png" "$share/icons/hicolor/${size}x${size}/apps/paramedit.png"
done

# Refresh the caches when the tools are there; desktops pick the files up without them, later.
if command -v update-mime-database >/dev/null; then update-mime-database "$share/mime"; fi
if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$share/applications"; fi
if command -v gtk-update-icon-cache >/dev/null; then gtk-update-icon-cache -q -t -f "$share/icons/hicolor" || true; fi
echo "installed paramedit's desktop entry, file types and icons under $share"
