"""paramedit's engine: no Qt here. Usable from scripts and notebooks."""

from paramedit.core.editing.edits import Edit, read_edit_log
from paramedit.core.errors import (
    BackwardCheckError,
    CheckpointError,
    DeviceError,
    EditError,
    ExpressionError,
    IdentityViolationError,
    ModelSpecError,
    ParameditError,
    RegionError,
    SaveError,
    UntrustedCheckpointError,
    ValueValidationError,
)
from paramedit.core.model.backward_check import BackwardReport
from paramedit.core.model.devices import available_devices
from paramedit.core.opening import open_session
from paramedit.core.session import Session

__all__ = [
    "BackwardCheckError",
    "BackwardReport",
    "CheckpointError",
    "DeviceError",
    "Edit",
    "EditError",
    "ExpressionError",
    "IdentityViolationError",
    "ModelSpecError",
    "ParameditError",
    "RegionError",
    "SaveError",
    "Session",
    "UntrustedCheckpointError",
    "ValueValidationError",
    "available_devices",
    "open_session",
    "read_edit_log",
]
