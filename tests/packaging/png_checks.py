"""Reading a PNG's size from its header and telling a real picture from a blank one."""

from __future__ import annotations

import struct
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which the PNG format requires to come first."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path} has no IHDR chunk first"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def distinct_colours(path: Path, samples: int = 40) -> int:
    """How many different colours a grid of samples finds (1 for a blank or single-colour image)."""
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull(), f"Qt cannot read {path}"
    colours = {
        image.pixel(x * (image.width() - 1) // (samples - 1), y * (image.height() - 1) // (samples - 1))
        for x in range(samples)
        for y in range(samples)
    }
    return len(colours)
