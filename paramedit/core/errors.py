"""The project's exception types.

Every error a user can cause is one of these, with a message a researcher understands.
``details`` keeps the original traceback text (shown with ``--verbose`` or a dialog's
"Details" button) without putting it in the message.
"""

from __future__ import annotations


class ParameditError(Exception):
    """Base class of every error paramedit raises on purpose."""

    def __init__(self, message: str, *, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ModelSpecError(ParameditError):
    """A model spec could not be imported, found, called, or did not give an ``nn.Module``."""


class CheckpointError(ParameditError):
    """A checkpoint file or folder could not be read."""


class UntrustedCheckpointError(CheckpointError):
    """A pickle needs more than plain tensors; loading it would run code from the file.

    ``globals`` lists the ``module.name`` globals the pickle asks for.
    """

    def __init__(self, message: str, *, globals: list[str], details: str | None = None) -> None:
        super().__init__(message, details=details)
        self.globals = list(globals)


class RegionError(ParameditError):
    """An index string could not be parsed or does not fit the tensor."""


class ExpressionError(ParameditError):
    """A formula is not valid in the safe expression language.

    ``position`` is the 0-based character offset of the problem, when known; the message then
    says where, counting from 1, as a user reads the formula ("at character 5").
    """

    def __init__(self, message: str, *, position: int | None = None, details: str | None = None) -> None:
        if position is not None:
            message = f"{message} (at character {position + 1} of the formula)"
        super().__init__(message, details=details)
        self.position = position


class ValueValidationError(ParameditError):
    """A value cannot be stored in the target tensor's dtype or shape."""


class EditError(ParameditError):
    """An edit names a tensor, source or method that does not exist, or is otherwise invalid."""


class IdentityViolationError(ParameditError):
    """After a commit, the object at a name is no longer the same ``nn.Parameter``/tensor."""


class BackwardCheckError(ParameditError):
    """The backward check could not run (no model, no input, forward raised, ...)."""


class CheckTooBigError(BackwardCheckError):
    """A backward check refused before it started: its gradients and activations would not fit in
    free memory (``needs`` and ``free`` in bytes; ``free`` is None when unknown)."""

    def __init__(self, message: str, *, needs: int, free: int | None) -> None:
        super().__init__(message)
        self.needs, self.free = needs, free


class SaveError(ParameditError):
    """A save failed; the previous file is left as it was."""


class DeviceError(ParameditError):
    """A device is not available or the model could not be moved to it."""
