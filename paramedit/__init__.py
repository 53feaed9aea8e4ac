"""paramedit: edit the parameters of PyTorch models in place, and prove gradients still flow.

``import paramedit`` never imports Qt; the GUI lives in :mod:`paramedit.qt`. The engine is
loaded on first use so that ``paramedit --help`` does not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_CORE_NAMES = {
    "open_session", "Session", "Edit", "read_edit_log", "available_devices", "BackwardReport",
    "ParameditError", "CheckpointError", "UntrustedCheckpointError", "ModelSpecError", "RegionError",
    "ExpressionError", "ValueValidationError", "EditError", "IdentityViolationError",
    "BackwardCheckError", "SaveError", "DeviceError",
}

if TYPE_CHECKING:
    from paramedit.core import *  # noqa: F403


def __getattr__(name: str) -> Any:
    if name == "edit":  # the window on a live model; imports Qt only when called
        from paramedit.notebook import edit

        return edit
    if name in _CORE_NAMES:
        from paramedit import core

        return getattr(core, name)
    raise AttributeError(f"module 'paramedit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_CORE_NAMES, "edit"])


__all__ = sorted([*_CORE_NAMES, "edit"])
