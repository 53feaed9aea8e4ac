"""One probe of the Outputs panel, as it runs in a worker thread.

The forward pass holds a lock that the window's other model jobs (the backward check, a device
move) also take, so two forward passes never switch the model's mode under each other and a
model is never moved while it runs. A newer change sets the request's ``stop`` event: a forward
pre-hook on every module raises at the next module, so a superseded probe ends within one layer
instead of a whole pass (core's probe restores the model's mode however it ends).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from paramedit.core.errors import BackwardCheckError
from paramedit.core.model.probe import ProbeResult
from paramedit.core.session import Session


class ProbeCancelled(Exception):
    """Raised inside the forward pass of a probe a newer change made useless."""


@dataclass
class ProbeRequest:
    """What one probe runs on; ``inputs`` None builds them from ``input_exprs`` or ``prompt``."""

    session: Session
    inputs: Any = None
    input_exprs: list[str] | None = None
    prompt: str | None = None
    generate: int = 0
    top_k: int = 5
    version: int = 0  # the window's count of weight changes when the probe started
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class ProbeOutcome:
    """A finished probe: the result, how long one forward pass took, and whether the session
    can take a prompt."""

    request: ProbeRequest
    result: ProbeResult
    seconds: float  # the whole probe, lock wait excluded
    forward_seconds: float  # one forward pass (a continuation of N tokens costs N more)
    has_tokenizer: bool


def _stop_hooks(model: nn.Module, stop: threading.Event) -> list:
    def check(_module: nn.Module, _args: Any) -> None:
        if stop.is_set():
            raise ProbeCancelled()

    return [m.register_forward_pre_hook(check) for m in model.modules()]


def run_probe(request: ProbeRequest, lock: threading.Lock) -> ProbeOutcome:
    """Run ``request`` (in a worker thread); raises :class:`ProbeCancelled` when stopped."""
    session = request.session
    has_tokenizer = session.has_tokenizer  # loads the tokenizer here, off the GUI thread
    with lock:
        if request.stop.is_set():
            raise ProbeCancelled()
        model = session.model
        if model is None:
            raise BackwardCheckError("the outputs need a model; this session has only a checkpoint's tensors")
        hooks = _stop_hooks(model, request.stop)
        start = time.perf_counter()
        try:
            result = session.probe(request.inputs, top_k=request.top_k, input_exprs=request.input_exprs,
                                   prompt=request.prompt if request.inputs is None else None,
                                   generate=request.generate)
        except BackwardCheckError as exc:
            if request.stop.is_set():
                raise ProbeCancelled() from exc  # core wraps what the hook raised in the forward
            raise
        finally:
            for hook in hooks:
                hook.remove()
        seconds = time.perf_counter() - start
    if request.stop.is_set():
        raise ProbeCancelled()
    return ProbeOutcome(request, result, seconds, seconds / (1 + max(0, request.generate)), has_tokenizer)


def locked(lock: threading.Lock, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` holding ``lock``: a model job that must not run beside a probe."""
    with lock:
        return fn(*args, **kwargs)
