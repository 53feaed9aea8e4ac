"""Where a session's named tensors live: a model's parameters and buffers, or a plain dict."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from paramedit.core.tensor_tree import model_tensors


class TensorStore:
    """Canonical name -> live tensor, with kinds, tied aliases, and a way to look a name up again.

    For a model, :meth:`lookup` walks the module tree, so it sees what is at the name *now*
    (which is how a replaced parameter is caught).
    """

    def __init__(
        self,
        tensors: Mapping[str, torch.Tensor],
        kinds: Mapping[str, str],
        aliases: Mapping[str, str],
        *,
        model: nn.Module | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.tensors = dict(tensors)
        self.kinds = dict(kinds)
        self.aliases = dict(aliases)
        self.model = model
        first = next(iter(self.tensors.values()), None)
        self.device = device or (first.device if first is not None else torch.device("cpu"))

    @classmethod
    def from_model(cls, model: nn.Module) -> TensorStore:
        tensors, kinds, aliases = model_tensors(model)
        return cls(tensors, kinds, aliases, model=model)

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], aliases: Mapping[str, str]) -> TensorStore:
        canonical = {n: t for n, t in tensors.items() if n not in aliases}
        return cls(canonical, dict.fromkeys(canonical, "tensor"), aliases)

    def lookup(self, name: str) -> torch.Tensor | None:
        """The object registered at ``name`` right now."""
        if self.model is None:
            return self.tensors.get(name)
        path, _, attr = name.rpartition(".")
        try:
            module = self.model.get_submodule(path) if path else self.model
        except AttributeError:
            return None
        if attr in module._parameters:
            return module._parameters[attr]
        if attr in module._buffers:
            return module._buffers[attr]
        value = getattr(module, attr, None)
        return value if isinstance(value, torch.Tensor) else None

    def move(self, device: torch.device) -> None:
        """Move plain tensors in place (``.data`` swap, as ``Module.to`` does)."""
        with torch.no_grad():
            for t in self.tensors.values():
                t.data = t.data.to(device)
