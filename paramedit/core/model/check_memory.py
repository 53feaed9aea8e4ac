"""Will a backward check fit? An estimate made before anything is allocated.

A check allocates a gradient for every trainable parameter it covers (the parameter's own size
and dtype) and keeps the forward's activations for the backward. Gradients are counted exactly;
activations are estimated: for a transformer whose config gives its sizes, the usual
``34 * batch * tokens * hidden * layers`` bytes at 2 bytes a value (scaled to the model's
dtype), else a tenth of the covered parameters' bytes. The estimate is compared with the
memory free on the model's device (``MemAvailable`` for the CPU, ``cudaMemGetInfo`` for CUDA).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CheckEstimate", "estimate_check", "free_bytes"]

GIB = 1 << 30
#: Refuse when the estimate exceeds this share of the free memory (the rest is headroom).
FIT_FRACTION = 0.9


def free_bytes(device: torch.device) -> int | None:
    """Memory free for new allocations on ``device`` (None when it cannot be told)."""
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            return int(free)
        except (RuntimeError, AssertionError):
            return None
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


@dataclass
class CheckEstimate:
    """What a check would allocate, against what is free."""

    gradient_bytes: int
    activation_bytes: int
    free: int | None
    parameters: int  # how many parameters the check covers

    @property
    def total(self) -> int:
        return self.gradient_bytes + self.activation_bytes

    @property
    def fits(self) -> bool:
        return self.free is None or self.total <= FIT_FRACTION * self.free

    def describe(self) -> str:
        free = f"{size_text(self.free)} is free" if self.free is not None else "free memory is unknown"
        return (f"the check needs about {size_text(self.total)} (gradients of {self.parameters} parameters: "
                f"{size_text(self.gradient_bytes)}, the forward's activations: about "
                f"{size_text(self.activation_bytes)}) and {free}")


def size_text(n: int) -> str:
    """Bytes as people read them: 13.5 GiB, 704 MiB, 12 KiB."""
    for unit, scale in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} bytes"


def _input_tokens(inputs: Any) -> tuple[int, int] | None:
    """(batch, tokens) of the first integer input (token ids), if any."""
    values: list[Any] = []
    if hasattr(inputs, "args"):
        values = [*inputs.args, *inputs.kwargs.values()]
    elif isinstance(inputs, Mapping):
        values = list(inputs.values())
    elif isinstance(inputs, (tuple, list)):
        values = list(inputs)
    elif isinstance(inputs, torch.Tensor):
        values = [inputs]
    for v in values:
        if isinstance(v, torch.Tensor) and not v.is_floating_point() and v.ndim == 2:
            return int(v.shape[0]), int(v.shape[1])
    return None


def estimate_check(model: nn.Module, covered: Mapping[str, torch.Tensor], inputs: Any) -> CheckEstimate:
    """The memory a check over the ``covered`` parameters (name -> parameter) would need."""
    trainable = [p for p in covered.values() if p.requires_grad]
    grads = sum(p.numel() * p.element_size() for p in trainable)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    element = next((p.element_size() for p in trainable), 4)
    config = getattr(model, "config", None)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    tokens = _input_tokens(inputs)
    if isinstance(hidden, int) and isinstance(layers, int) and tokens is not None:
        batch, seq = tokens
        activations = int(34 * batch * seq * hidden * layers * element / 2)
    else:
        activations = weights // 10
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return CheckEstimate(grads, max(activations, 0), free_bytes(device), len(trainable))
