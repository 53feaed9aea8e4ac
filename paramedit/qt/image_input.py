"""An image file as the input of a model that takes N×C×H×W: read through Qt, converted to the
model's channels and size, and scaled to the range its example input uses.

Where the image goes is the model's current input: its first positional 4-D floating-point
tensor, or a ``pixel_values`` keyword (Hugging Face vision models). The image replaces that
tensor with a batch of one; every other input stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from paramedit.core.errors import BackwardCheckError
from paramedit.core.model.inputs import ForwardInputs

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp);;All files (*)"


@dataclass(frozen=True)
class ImageSlot:
    """Where an image goes in a model's inputs, and the shape it must have."""

    position: int | None  # index among the positional inputs, or None for ``keyword``
    keyword: str | None
    shape: tuple[int, int, int, int]  # N, C, H, W of the input it replaces
    low: float  # the range pixel values are scaled to
    high: float

    def describe(self) -> str:
        _n, c, h, w = self.shape
        where = f"{self.keyword}=" if self.keyword else ""
        return f"{where}1×{c}×{h}×{w} in [{self.low:g}, {self.high:g}]"


def _pixel_range(t: torch.Tensor) -> tuple[float, float]:
    """[0, 1], [0, 255] or [-1, 1] when the example input looks like pixels; [0, 1] otherwise."""
    finite = t[torch.isfinite(t)]
    if not finite.numel():
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0 and hi > 1.5:
        return 0.0, 255.0
    if lo < 0 and lo >= -1 and hi <= 1:
        return -1.0, 1.0
    return 0.0, 1.0


def _image_input(inputs: Any) -> tuple[int | None, str | None, torch.Tensor] | None:
    args, kwargs = (inputs.args, inputs.kwargs) if isinstance(inputs, ForwardInputs) else (
        (tuple(inputs), {}) if isinstance(inputs, (tuple, list)) else ((inputs,), {}))
    candidates: list[tuple[int | None, str | None, Any]] = [(i, None, a) for i, a in enumerate(args)]
    candidates += [(None, k, v) for k, v in kwargs.items() if k == "pixel_values"]
    for position, keyword, value in candidates:
        if isinstance(value, torch.Tensor) and value.ndim == 4 and value.is_floating_point() and value.shape[1] in (1, 3, 4):
            return position, keyword, value
    return None


def takes_image(inputs: Any) -> bool:
    """Whether ``inputs`` hold an N×C×H×W tensor an image could replace (shapes only: cheap)."""
    return inputs is not None and _image_input(inputs) is not None


def image_slot(inputs: Any) -> ImageSlot | None:
    """Where an image fits in ``inputs`` (the last probe's), or None when the model takes no N×C×H×W."""
    found = _image_input(inputs)
    if found is None:
        return None
    position, keyword, value = found
    low, high = _pixel_range(value.detach().cpu())
    return ImageSlot(position, keyword, tuple(int(d) for d in value.shape), low, high)  # type: ignore[arg-type]


def read_image(path: str | Path, slot: ImageSlot) -> tuple[torch.Tensor, QImage]:
    """The image at ``path`` as a 1×C×H×W float32 tensor for ``slot``, and the converted picture."""
    image = QImage(str(path))
    if image.isNull():
        raise BackwardCheckError(f"{Path(path).name} could not be read as an image (PNG, JPEG, BMP, GIF, WebP)")
    _n, channels, height, width = slot.shape
    fmt = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888,
           4: QImage.Format.Format_RGBA8888}[channels]
    scaled = image.convertToFormat(fmt).scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation)
    row = scaled.bytesPerLine()  # rows are padded to 4 bytes
    raw = np.frombuffer(scaled.constBits(), dtype=np.uint8, count=row * height).reshape(height, row)
    pixels = raw[:, : width * channels].reshape(height, width, channels).copy()
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).to(torch.float32) / 255.0
    return tensor * (slot.high - slot.low) + slot.low, scaled.copy()


def with_image(inputs: Any, slot: ImageSlot, image: torch.Tensor) -> Any:
    """``inputs`` with the image in ``slot``'s place (the other inputs as they were)."""
    if slot.keyword is not None:
        assert isinstance(inputs, ForwardInputs)
        return ForwardInputs(inputs.args, {**inputs.kwargs, slot.keyword: image})
    args = list(inputs.args if isinstance(inputs, ForwardInputs) else
                inputs if isinstance(inputs, (tuple, list)) else (inputs,))
    args[slot.position or 0] = image
    return ForwardInputs(tuple(args), inputs.kwargs) if isinstance(inputs, ForwardInputs) else tuple(args)
