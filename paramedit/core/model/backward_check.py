"""The backward check: one forward and backward pass proving gradients still reach parameters.

It also finds the classic mistake paramedit exists to prevent: an attribute that was an
``nn.Parameter`` when the model was loaded and is now a plain tensor (``layer.weight = t``).
"""

from __future__ import annotations

import inspect
import math
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from paramedit.core.errors import BackwardCheckError
from paramedit.core.model.empty_build import model_output_to_stderr
from paramedit.core.model.inputs import ForwardInputs, move_to


@dataclass
class ParamGrad:
    """Gradient status of one parameter after the check."""

    name: str
    requires_grad: bool
    has_grad: bool
    grad_norm: float | None
    finite: bool

    @property
    def zero(self) -> bool:
        """A gradient arrived, finite, and exactly zero everywhere: the parameter is connected,
        but this input and loss give it no signal (e.g. everything after a zeroed layer)."""
        return self.has_grad and self.finite and self.grad_norm == 0.0

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BackwardReport:
    """Result of :func:`run_backward_check`."""

    loss: float
    device: str
    params: list[ParamGrad]
    missing_grad: list[str]
    replaced: list[str]
    reduction: str = "sum"
    notes: list[str] = field(default_factory=list)
    # When the loss or gradients are not finite: the tensors whose values are not (from a scan),
    # e.g. "transformer.wte.weight[31337, 17] holds NaN (1 value)".
    cause: list[str] = field(default_factory=list)
    # Model tensors the checkpoint did not give values to (missing, or another shape): the check
    # ran on their initial values, which says little about the checkpoint.
    not_loaded: list[str] = field(default_factory=list)
    only: list[str] = field(default_factory=list)  # the globs a partial check covered (empty: all)
    objective: str = ""  # the loss in words ("next-token cross-entropy of the input", "sum of the outputs")
    total_parameters: int = 0  # how many parameters the model has, when ``only`` chose some

    @property
    def finite(self) -> bool:
        """The loss and every gradient that arrived are finite."""
        return math.isfinite(self.loss) and all(p.finite for p in self.params if p.has_grad)

    @property
    def trainable(self) -> list[ParamGrad]:
        return [p for p in self.params if p.requires_grad]

    @property
    def zero_grad(self) -> list[str]:
        """Trainable parameters whose gradient is exactly zero everywhere (connected, no signal)."""
        return [p.name for p in self.params if p.requires_grad and p.zero]

    @property
    def ok(self) -> bool:
        """Every trainable parameter got a finite gradient and none was replaced (zeros allowed)."""
        return not self.missing_grad and not self.replaced

    @property
    def strict_ok(self) -> bool:
        """:attr:`ok`, no trainable parameter's gradient is exactly zero, and every model tensor
        came from the checkpoint."""
        return self.ok and not self.zero_grad and not self.not_loaded

    def verdict(self) -> str:
        """One sentence for the status line and the CLI: never calls a zero gradient a pass."""
        text = self._gradient_verdict()
        if self.only:
            text += (f" (checked {len(self.params)} of {self.total_parameters} parameters: "
                     f"{', '.join(self.only)}; the others were frozen for the check)")
        if self.not_loaded:
            text += (f"; but {len(self.not_loaded)} model tensor(s) did not come from the checkpoint and kept "
                     f"their initial values: {_few(self.not_loaded)}")
        return text

    def _gradient_verdict(self) -> str:
        n = len(self.trainable)
        if self.replaced:
            return f"{len(self.replaced)} parameter(s) are no longer nn.Parameters: {', '.join(self.replaced)}"
        zero = self.zero_grad
        if not self.missing_grad:
            if not zero:
                return f"all {n} trainable parameters received finite, non-zero gradients"
            return (f"all {n} trainable parameters received finite gradients, but {len(zero)} of them are exactly "
                    f"zero (connected, but this input and loss give them no signal): {_few(zero)}")
        text = (f"{len(self.missing_grad)} of {n} trainable parameters did not receive a finite gradient: "
                f"{_few(self.missing_grad)}")
        if self.cause:
            text = (f"{len(self.missing_grad)} of {n} trainable parameters did not receive a finite gradient, because "
                    f"the model's own values are not finite: {'; '.join(self.cause[:4])}")
        if zero:
            text += f"; {len(zero)} more got a gradient that is exactly zero: {_few(zero)}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "device": self.device,
            "params": [p.as_json() for p in self.params],
            "missing_grad": list(self.missing_grad),
            "replaced": list(self.replaced),
            "zero_grad": self.zero_grad,
            "cause": list(self.cause),
            "not_loaded": list(self.not_loaded),
            "only": list(self.only),
            "objective": self.objective or f"{self.reduction} of the outputs",
        }


def _few(names: list[str], n: int = 8) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", … ({len(names) - n} more)" if len(names) > n else "")


@dataclass(frozen=True)
class ParameterSlot:
    """Where a Parameter lived at load time: ``module.<attr>`` under ``name``."""

    name: str
    module: nn.Module
    attr: str
    param: nn.Parameter


def parameter_slots(model: nn.Module) -> list[ParameterSlot]:
    """Record every Parameter's home, to detect later replacement by a plain tensor."""
    slots = []
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for attr, p in module._parameters.items():
            if isinstance(p, nn.Parameter):
                slots.append(ParameterSlot(f"{mod_name}.{attr}" if mod_name else attr, module, attr, p))
    return slots


def replaced_parameters(slots: Iterable[ParameterSlot]) -> list[str]:
    """Names that were Parameters at load time and now hold something that is not one."""
    replaced = []
    for slot in slots:
        current = getattr(slot.module, slot.attr, None)
        if not isinstance(current, nn.Parameter):
            replaced.append(slot.name)
    return replaced


def floating_outputs(out: Any, _depth: int = 0) -> list[torch.Tensor]:
    """Every floating-point tensor in a model output (tensors, tuples, dicts, HF output objects)."""
    if _depth > 20:
        return []
    if isinstance(out, torch.Tensor):
        return [out] if (out.is_floating_point() or out.is_complex()) else []
    if isinstance(out, Mapping):  # includes transformers' ModelOutput, an OrderedDict
        items: Iterable[Any] = out.values()
    elif isinstance(out, (tuple, list)):
        items = out
    elif hasattr(out, "__dataclass_fields__"):
        items = (getattr(out, f) for f in out.__dataclass_fields__)
    else:
        return []
    found: list[torch.Tensor] = []
    for item in items:
        found.extend(floating_outputs(item, _depth + 1))
    return found


def main_output(out: Any, none_found: str) -> torch.Tensor:
    """The output a loss or a probe reads: ``logits`` (an attribute or a key, as Hugging Face
    outputs have), else the first floating-point tensor; ``none_found`` is the error otherwise."""
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, Mapping):
        logits = out.get("logits")
    if isinstance(logits, torch.Tensor):
        return logits
    found = floating_outputs(out)
    if not found:
        raise BackwardCheckError(none_found)
    return found[0]


def _forward(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, ForwardInputs):
        return inputs.call(model)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


_OOM_MESSAGE = ("the check ran out of memory in the {stage} pass; the model and its gradients are as they were. "
                "Check part of the model with --only GLOB (only=[...] in Python), or a smaller input.")


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def forward_hint(model: nn.Module) -> str:
    """What ``forward`` takes, to say how to pass it (keyword inputs are ``name=EXPR``)."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return ""
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not names:
        return ""
    shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
    return (f" (its forward takes {shown}; give inputs in that order, or by name as "
            "--input 'name=EXPR', e.g. --input 'attention_mask=int(ones(1, 16))')")


def grad_norm(grad: torch.Tensor) -> tuple[float, bool]:
    """(L2 norm, all elements finite) at the cost of one pass in the gradient's own dtype.

    Only when that norm overflows (finite values whose squares do not fit) is it recomputed in
    float64, so a healthy model pays no float64 copy of every gradient.
    """
    norm = float(torch.linalg.vector_norm(grad))
    if math.isfinite(norm):
        return norm, True
    if not bool(torch.isfinite(grad).all()):
        return norm, False
    return float(torch.linalg.vector_norm(grad, dtype=torch.float64)), True


def run_backward_check(
    model: nn.Module,
    inputs: Any,
    *,
    names: Mapping[str, nn.Parameter] | None = None,
    slots: Iterable[ParameterSlot] = (),
    reduction: str = "sum",
    train_mode: bool = False,
    disposable: Iterable[int] = (),
    objective: Callable[[Any, Any], torch.Tensor] | None = None,
) -> BackwardReport:
    """Run forward and backward once and report, per parameter, whether a finite grad arrived.

    ``names`` maps each (de-duplicated) parameter name to report; it defaults to
    ``model.named_parameters()``. Old gradients are cleared first. The model runs in eval mode
    unless ``train_mode`` (so BatchNorm statistics and dropout are untouched); its mode is
    restored afterwards. If anything fails, the previous gradients are put back and a
    :class:`BackwardCheckError` names the cause, except ``disposable`` ones (the ``id`` of
    gradients an earlier check left, which the parameters still hold): those are dropped at
    once rather than kept for a restore, so the new gradients can reuse their memory (keeping a
    124M model's old gradients alive while new ones were allocated made a repeated check ~1.6x
    a bare backward instead of ~1.15x), and are None after a failure.
    """
    if reduction not in ("sum", "mean"):
        raise BackwardCheckError(f"reduction must be 'sum' or 'mean', not {reduction!r}")
    params = dict(names) if names is not None else dict(model.named_parameters())
    device = next(iter(params.values())).device if params else torch.device("cpu")
    was_training = model.training
    drop = set(disposable)
    old_grads = {name: (None if p.grad is not None and id(p.grad) in drop else p.grad) for name, p in params.items()}
    buffers_before = (
        {n: b.detach().clone() for n, b in model.named_buffers()} if train_mode else {}
    )
    notes: list[str] = []
    try:
        for p in params.values():
            p.grad = None
        model.train(train_mode)
        with torch.enable_grad(), model_output_to_stderr():
            try:
                out = _forward(model, move_to(inputs, device))
            except (Exception, SystemExit) as exc:
                if _out_of_memory(exc):
                    raise BackwardCheckError(_OOM_MESSAGE.format(stage="forward"),
                                             details=traceback.format_exc()) from exc
                raise BackwardCheckError(
                    f"the model's forward raised {type(exc).__name__}: {exc}{forward_hint(model)}",
                    details=traceback.format_exc(),
                ) from exc
            tensors = [t for t in floating_outputs(out) if t.requires_grad]
            if not tensors:
                raise BackwardCheckError(
                    "the model's output has no tensor that requires grad, so no gradient can flow "
                    f"(output type: {type(out).__name__})"
                )
            if objective is not None:
                loss = objective(out, inputs)
            else:
                parts = [(t.real if t.is_complex() else t) for t in tensors]
                loss = sum((t.sum() if reduction == "sum" else t.mean()) for t in parts)
            try:
                loss.backward()
            except (Exception, SystemExit) as exc:
                if _out_of_memory(exc):
                    raise BackwardCheckError(_OOM_MESSAGE.format(stage="backward"),
                                             details=traceback.format_exc()) from exc
                raise BackwardCheckError(
                    f"backward raised {type(exc).__name__}: {exc}", details=traceback.format_exc()
                ) from exc
    except BaseException:
        for name, p in params.items():
            p.grad = old_grads[name]
        raise
    finally:
        model.train(was_training)
        if buffers_before:
            with torch.no_grad():
                for n, b in model.named_buffers():
                    if n in buffers_before:
                        b.copy_(buffers_before[n])

    results = []
    for name, p in params.items():
        if not p.is_leaf:
            notes.append(f"{name} is not a leaf tensor; its .grad is not populated by backward")
        grad = p.grad
        if grad is None:
            results.append(ParamGrad(name, p.requires_grad, False, None, False))
            continue
        norm, finite = grad_norm(grad.detach())
        results.append(ParamGrad(name, p.requires_grad, True, norm, finite))
    missing = [r.name for r in results if r.requires_grad and not (r.has_grad and r.finite)]
    return BackwardReport(
        loss=float(loss.detach()),
        device=str(device),
        params=results,
        missing_grad=missing,
        replaced=replaced_parameters(slots),
        reduction=reduction,
        notes=notes,
    )
