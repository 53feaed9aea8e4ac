"""The loss a backward check differentiates: a real one when it can tell, else the outputs' sum.

A causal language model gets the next-token cross-entropy of its own input (labels = the input
ids shifted by one, as training does); a classifier can be checked against a chosen class
(``class:K``); anything else gets the sum (or mean) of every floating output, which reaches every
parameter the output depends on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from paramedit.core.errors import BackwardCheckError
from paramedit.core.model.backward_check import main_output
from paramedit.core.model.inputs import ForwardInputs

__all__ = ["LOSSES", "choose_objective"]

LOSSES = ("auto", "sum", "mean", "next-token", "class:K")
Objective = Callable[[Any, Any], torch.Tensor]


def _token_ids(inputs: Any) -> torch.Tensor | None:
    if isinstance(inputs, ForwardInputs):
        ids = inputs.kwargs.get("input_ids")
        values = [ids] if ids is not None else list(inputs.args)
    elif isinstance(inputs, Mapping):
        values = [inputs.get("input_ids")]
    elif isinstance(inputs, (tuple, list)):
        values = list(inputs[:1])
    else:
        values = [inputs]
    for v in values:
        if isinstance(v, torch.Tensor) and not v.is_floating_point() and v.ndim == 2:
            return v
    return None


def _causal_lm(model: nn.Module) -> bool:
    name = type(model).__name__
    return name.endswith(("ForCausalLM", "LMHeadModel")) or bool(getattr(getattr(model, "config", None), "is_decoder",
                                                                          False))


def _logits(out: Any) -> torch.Tensor:
    return main_output(out, "the output has no logits to take a cross-entropy of")


def choose_objective(model: nn.Module, inputs: Any, loss: str | None) -> tuple[Objective | None, str]:
    """(the loss as a function of (output, inputs), its description); None: the outputs' sum or mean."""
    mode = (loss or "auto").strip()
    if mode in ("sum", "mean"):
        return None, f"{mode} of the outputs"
    ids = _token_ids(inputs)
    if mode == "auto":
        if not (_causal_lm(model) and ids is not None and ids.shape[1] > 1):
            return None, "sum of the outputs"
        mode = "next-token"
    if mode == "next-token":
        if ids is None or ids.shape[1] < 2:
            raise BackwardCheckError("--loss next-token needs token ids (batch x tokens, at least 2 tokens) as the "
                                     "input, e.g. --input 'input_ids=randint(1000, (1, 16))'")

        def next_token(out: Any, _inputs: Any) -> torch.Tensor:
            logits = _logits(out)
            if logits.ndim != 3:
                raise BackwardCheckError(f"--loss next-token needs logits of shape (batch, tokens, vocab), not "
                                         f"{list(logits.shape)}")
            target = ids.to(logits.device)[:, 1:]
            return functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), target.reshape(-1))

        return next_token, "next-token cross-entropy of the input"
    if mode.startswith("class:"):
        try:
            k = int(mode.split(":", 1)[1])
        except ValueError:
            raise BackwardCheckError(f"--loss {mode!r}: write class:K with a class number, e.g. class:3") from None

        def against_class(out: Any, _inputs: Any) -> torch.Tensor:
            logits = _logits(out)
            scores = logits[:, -1, :] if logits.ndim == 3 else logits
            if scores.ndim != 2 or not 0 <= k < scores.shape[-1]:
                raise BackwardCheckError(f"--loss class:{k}: the output has {scores.shape[-1]} classes")
            target = torch.full((scores.shape[0],), k, dtype=torch.long, device=scores.device)
            return functional.cross_entropy(scores.float(), target)

        return against_class, f"cross-entropy against class {k}"
    raise BackwardCheckError(f"--loss {mode!r} is not one of {', '.join(LOSSES)}")
