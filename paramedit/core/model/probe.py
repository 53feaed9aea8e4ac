"""The probe: what the model outputs on one input, summarised, and how an edit changed it.

One forward pass in ``eval()`` mode under ``no_grad`` (the model's mode is restored after). An
output whose last dimension is classes or vocabulary (logits: a Hugging Face ``ModelOutput``'s
``logits``, or a tensor of shape (batch, classes) or (batch, tokens, vocab)) is summarised as the
top-k classes with their probabilities per sample, at the last position of a sequence; any other
output as its shape and statistics. :meth:`ProbeResult.compare` gives the KL divergence from the
earlier result, the largest change of a logit and how many top-1 predictions changed.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from paramedit.core.errors import BackwardCheckError
from paramedit.core.model.backward_check import main_output
from paramedit.core.model.empty_build import model_output_to_stderr
from paramedit.core.model.inputs import ForwardInputs, move_to

__all__ = ["ProbeChange", "ProbeResult", "probe_model"]


@dataclass
class ProbeChange:
    """How the outputs moved between two probes on the same input."""

    kl: float | None  # mean over samples of KL(before || after), nats
    max_abs_logit_diff: float
    top1_changed: int
    samples: int

    def to_json(self) -> dict[str, Any]:
        return {"kl": self.kl, "max_abs_logit_diff": self.max_abs_logit_diff, "top1_changed": self.top1_changed}

    def describe(self) -> str:
        kl = f"KL {self.kl:.4g} nats, " if self.kl is not None else ""
        return (f"{kl}max |Δ logit| {self.max_abs_logit_diff:.4g}, top-1 changed in {self.top1_changed} of "
                f"{self.samples} sample(s)")


@dataclass
class ProbeResult:
    """One probe: the summarised output (and the raw scores, kept for a comparison)."""

    shape: tuple[int, ...]
    scores: torch.Tensor  # (samples, classes) at the last position for class outputs; the output otherwise
    classes: bool
    top_k: list[list[dict[str, Any]]] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    labels: Callable[[int], str | None] | None = None
    generated: list[str] | None = None  # a greedy continuation per sample, as text, when asked
    inputs: Any = field(default=None, repr=False)  # what the model was given: probe again on the same

    @property
    def top1(self) -> list[int]:
        return [int(i) for i in self.scores.argmax(dim=-1)] if self.classes else []

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"shape": list(self.shape)}
        if self.classes:
            data["top_k"] = self.top_k
        else:
            data["stats"] = self.stats
        if self.generated is not None:
            data["generated"] = self.generated
        return data

    def compare(self, previous: ProbeResult) -> ProbeChange:
        """How this result differs from ``previous`` (the one before an edit)."""
        if previous.scores.shape != self.scores.shape:
            raise BackwardCheckError(f"the two probes have outputs of different shapes ({list(previous.shape)} and "
                                     f"{list(self.shape)}): they were not run on the same input")
        before, after = previous.scores.double(), self.scores.double()
        diff = (after - before).abs()
        peak = float(diff[torch.isfinite(diff)].max()) if bool(torch.isfinite(diff).any()) else math.nan
        if not self.classes:
            return ProbeChange(None, peak, 0, int(self.scores.shape[0]) if self.scores.ndim else 1)
        p = torch.log_softmax(before, dim=-1)
        q = torch.log_softmax(after, dim=-1)
        kl = float((p.exp() * (p - q)).sum(dim=-1).mean())
        changed = sum(int(a != b) for a, b in zip(previous.top1, self.top1, strict=True))
        return ProbeChange(kl, peak, changed, int(self.scores.shape[0]))


def _main_output(out: Any) -> torch.Tensor:
    return main_output(out, f"the model's output holds no floating-point tensor to probe ({type(out).__name__})")


def _class_count(model: nn.Module) -> set[int]:
    """Output sizes that are classes or a vocabulary: the config's, and a last Linear's outputs."""
    config = getattr(model, "config", None)
    sizes: set[object] = set()
    if config is not None:
        sizes |= {getattr(config, name, None) for name in ("vocab_size", "num_labels")}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears:
        sizes.add(linears[-1].out_features)
    return {s for s in sizes if isinstance(s, int) and s > 1}


def probe_model(model: nn.Module, inputs: Any, *, top_k: int = 5,
                labels: Callable[[int], str | None] | None = None) -> ProbeResult:
    """Run one forward pass in eval mode under no_grad and summarise the output."""
    if top_k < 1:
        raise BackwardCheckError(f"--top-k must be at least 1, not {top_k}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), model_output_to_stderr():
            moved = move_to(inputs, device)
            if isinstance(moved, ForwardInputs):
                out = moved.call(model)
            elif isinstance(moved, Mapping):
                out = model(**moved)
            elif isinstance(moved, (tuple, list)):
                out = model(*moved)
            else:
                out = model(moved)
    except BackwardCheckError:
        raise
    except (Exception, SystemExit) as exc:
        raise BackwardCheckError(f"the model's forward raised {type(exc).__name__}: {exc}",
                                 details=traceback.format_exc()) from exc
    finally:
        model.train(was_training)
    output = _main_output(out).detach().float().cpu()
    shape = tuple(output.shape)
    classes = output.ndim in (2, 3) and shape[-1] > 1 and (shape[-1] in _class_count(model) or output.ndim == 2)
    if not classes:
        finite = output[torch.isfinite(output)]
        stats = {"min": float(finite.min()), "max": float(finite.max()), "mean": float(finite.mean()),
                 "std": float(finite.std()) if finite.numel() > 1 else 0.0} if finite.numel() else {}
        return ProbeResult(shape, output, False, stats=stats)
    scores = output[:, -1, :] if output.ndim == 3 else output  # the next token, for a sequence
    probs = torch.softmax(scores.double(), dim=-1)
    k = min(top_k, scores.shape[-1])
    values, indices = probs.topk(k, dim=-1)
    table = [[{"index": int(i), "label": labels(int(i)) if labels else None, "prob": float(v)}
              for v, i in zip(row_v, row_i, strict=True)] for row_v, row_i in zip(values, indices, strict=True)]
    return ProbeResult(shape, scores, True, top_k=table, labels=labels)
