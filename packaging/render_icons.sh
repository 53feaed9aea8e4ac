#!/usr/bin/env bash
# Render resources/icons/paramedit.svg to the PNG sizes desktops and the window use.
# Needs rsvg-convert (Debian/Ubuntu: apt-get install librsvg2-bin). Run after editing the SVG.
set -euo pipefail
cd "$(dirname "$0")/../resources/icons"
for size in 16 32 48 64 128 256 512; do
    rsvg-convert --width "$size" --height "$size" paramedit.svg --output "paramedit-$size.png"
done
ls -l paramedit-*.png
