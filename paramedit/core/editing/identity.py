"""The proof after every write: the object at each edited name is still the same tensor.

``model.layer.weight = t`` or ``weight.data = t`` would leave a tensor that no longer trains;
paramedit records what each name held when the session opened and, after each commit, checks
that the object there is the same one, still an ``nn.Parameter`` if it was, with the same
storage, device, dtype and ``requires_grad``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from paramedit.core.errors import IdentityViolationError

__all__ = ["IdentityCheck", "IdentityRecord", "identity_snapshot", "verify_identity"]


def _data_ptr(t: torch.Tensor) -> int | None:
    """Where a tensor's values live; None for layouts without one storage (sparse)."""
    return t.data_ptr() if t.layout == torch.strided else None


@dataclass(frozen=True)
class IdentityRecord:
    """What a name held when the session opened."""

    tensor: torch.Tensor
    was_parameter: bool
    data_ptr: int | None
    device: torch.device
    dtype: torch.dtype
    requires_grad: bool


@dataclass(frozen=True)
class IdentityCheck:
    """The proof shown after a commit that a tensor was written in place."""

    name: str
    same_object: bool
    is_parameter: bool
    was_parameter: bool
    same_storage: bool
    same_device: bool
    same_dtype: bool
    same_requires_grad: bool

    @property
    def ok(self) -> bool:
        return (self.same_object and self.same_storage and self.same_device and self.same_dtype
                and self.same_requires_grad and self.is_parameter == self.was_parameter)


def identity_snapshot(tensors: Mapping[str, torch.Tensor]) -> dict[str, IdentityRecord]:
    """Record each name's tensor as it is now."""
    return {
        name: IdentityRecord(t, isinstance(t, nn.Parameter), _data_ptr(t), t.device, t.dtype, t.requires_grad)
        for name, t in tensors.items()
    }


def verify_identity(snapshot: Mapping[str, IdentityRecord], lookup: Callable[[str], torch.Tensor | None],
                    names: Iterable[str]) -> list[IdentityCheck]:
    """Check ``names`` against ``snapshot``, looking each up again with ``lookup``.

    Raises :class:`IdentityViolationError` naming every tensor that is no longer what it was.
    """
    checks = []
    for name in names:
        was = snapshot[name]
        now = lookup(name)
        checks.append(IdentityCheck(
            name=name,
            same_object=now is was.tensor,
            is_parameter=isinstance(now, nn.Parameter),
            was_parameter=was.was_parameter,
            same_storage=now is not None and _data_ptr(now) == was.data_ptr,
            same_device=now is not None and now.device == was.device,
            same_dtype=now is not None and now.dtype == was.dtype,
            same_requires_grad=now is not None and now.requires_grad == was.requires_grad,
        ))  # fmt: skip
    bad = [c.name for c in checks if not c.ok]
    if bad:
        raise IdentityViolationError(
            f"after writing, {', '.join(bad)} is no longer the same tensor object with the same "
            "storage; something outside paramedit replaced it"
        )
    return checks
