"""A backward check over some of a model's parameters: the others frozen for the check only.

Frozen parameters get no gradient and no memory for one; a module whose parameters are all
frozen lets the kernel drop their memory-mapped pages once it has run forward (read again from
the file if the backward needs them), so checking the last layer of a 7B model does not make all
its weights resident. Everything frozen is unfrozen afterwards, whatever happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from paramedit.core.checkpoints.mapped_reads import MappedFile, release_pages
from paramedit.core.model.backward_check import BackwardReport, ParameterSlot, run_backward_check

__all__ = ["check_parameters"]


def check_parameters(model: nn.Module, inputs: Any, every: Mapping[str, torch.Tensor],
                     checked: Mapping[str, nn.Parameter], *, slots: Iterable[ParameterSlot],
                     objective: Callable[[Any, Any], torch.Tensor] | None, reduction: str, train_mode: bool,
                     disposable: set[int], mapped_files: list[MappedFile],
                     write_lock: threading.Lock, partial: bool) -> BackwardReport:
    """:func:`run_backward_check` over ``checked``, with the rest of ``every`` frozen meanwhile
    (and, for a ``partial`` check, frozen modules' mapped pages released after their forward)."""
    frozen = [p for n, p in every.items() if n not in checked and p.requires_grad]
    hooks = []
    try:
        for p in frozen:
            p.requires_grad_(False)  # for this check only: no gradient, no memory for one
        if partial:
            hooks = _release_after_forward(model, mapped_files, write_lock)
        return run_backward_check(model, inputs, names=checked, slots=slots, reduction=reduction,
                                  train_mode=train_mode, disposable=disposable, objective=objective)
    finally:
        for hook in hooks:
            hook.remove()
        for p in frozen:
            p.requires_grad_(True)


def _release_after_forward(model: nn.Module, files: list[MappedFile], lock: threading.Lock) -> list:
    """Forward hooks on every module whose own parameters are all frozen: its pages go back to
    the file once it has run."""
    if not files:
        return []

    def release(module: nn.Module, _inputs: Any, _output: Any) -> None:
        with lock:  # never between an edit's copy-on-write and its check
            for p in module.parameters(recurse=False):
                release_pages(p.detach(), files)

    return [m.register_forward_hook(release) for m in model.modules()
            if any(True for _ in m.parameters(recurse=False))
            and not any(p.requires_grad for p in m.parameters(recurse=False))]
