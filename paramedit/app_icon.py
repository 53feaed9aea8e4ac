"""The application icon, shipped in ``paramedit.resources/icons`` (SVG source plus PNG renderings).

Importing this module does not import Qt; only :func:`application_icon` does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon

ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)
DESKTOP_FILE_NAME = "paramedit"  # packaging/paramedit.desktop, so Wayland can match window and entry


def desktop_icon_path(size: int | None = None) -> Path:
    """The SVG icon, or the PNG rendering of ``size`` pixels (one of :data:`ICON_SIZES`)."""
    if size is not None and size not in ICON_SIZES:
        raise ValueError(f"no {size}px icon; the sizes are {', '.join(map(str, ICON_SIZES))}")
    name = "paramedit.svg" if size is None else f"paramedit-{size}.png"
    # One name per joinpath: Python < 3.12 rejects several when files() is a MultiplexedPath.
    return Path(str(resources.files("paramedit.resources.icons").joinpath(name)))


def application_icon() -> QIcon:
    """A QIcon with every PNG size.

    PNGs rather than the SVG: they need no QtSvg image plugin, which a frozen bundle may leave
    out, and small sizes are rendered once ahead of time instead of blurred at run time.
    """
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for size in ICON_SIZES:
        icon.addFile(str(desktop_icon_path(size)), QSize(size, size))
    return icon
