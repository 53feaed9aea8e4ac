"""What the Outputs panel shows: one snapshot of the probes, and what they run on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch

from paramedit.core.model.inputs import ForwardInputs
from paramedit.core.model.probe import ProbeChange, ProbeResult


class Baseline(Enum):
    """What the outputs are compared with."""

    LAST = "the state before the last change"
    OPENED = "the checkpoint as opened"
    PINNED = "the pinned state"


@dataclass
class InputChoice:
    """What the probe runs on: the session's own input, expressions, a prompt or given tensors."""

    exprs: list[str] | None = None
    prompt: str | None = None
    inputs: Any = None
    text: str = ""  # how the panel names it (an image file, ...)


@dataclass
class OutputsState:
    """Everything the Outputs panel shows, in one snapshot."""

    before: ProbeResult | None = None
    after: ProbeResult | None = None
    baseline: Baseline = Baseline.LAST
    change: ProbeChange | None = None
    message: str = ""  # what is going on, or what went wrong
    error: bool = False
    note: str = ""  # why the outputs are not re-run by themselves
    running: bool = False
    stale: bool = False  # ``after`` is not the model as it is now
    auto: bool = True
    input_text: str = ""
    has_tokenizer: bool = False
    prompt: str | None = None
    image_ok: bool = False
    can_pin: bool = False


def describe_inputs(inputs: Any) -> str:
    """``4×784`` or ``input_ids 1×5, attention_mask 1×5``: the shapes of what the model was given."""
    def shape(t: Any) -> str:
        return "×".join(map(str, t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__

    if isinstance(inputs, ForwardInputs):
        parts = [shape(a) for a in inputs.args] + [f"{k} {shape(v)}" for k, v in inputs.kwargs.items()]
    elif isinstance(inputs, (tuple, list)):
        parts = [shape(a) for a in inputs]
    else:
        parts = [shape(inputs)]
    return ", ".join(parts)



def input_shapes(inputs: Any) -> list[tuple[int, ...]]:
    """The shape of every tensor in ``inputs`` (positional and keyword)."""
    if isinstance(inputs, ForwardInputs):
        values = [*inputs.args, *inputs.kwargs.values()]
    elif isinstance(inputs, (tuple, list)):
        values = list(inputs)
    else:
        values = [inputs]
    return [tuple(v.shape) for v in values if isinstance(v, torch.Tensor)]
