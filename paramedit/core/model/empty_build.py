"""Building a model once, with its parameters on ``meta`` and everything else for real.

A checkpoint replaces every parameter, so initialising them is wasted work and memory (7B random
float32 parameters do not fit a 24 GB machine). Building the whole constructor under
``torch.device("meta")`` avoids that, but also leaves every buffer and plain tensor the
constructor *computes* without values: a rotary embedding's non-persistent ``inv_freq``, a
causal mask. So, as accelerate's ``init_empty_weights(include_buffers=False)`` does, the
constructor runs on the CPU and each parameter is moved to ``meta`` as it is registered: buffers
are computed for real, parameters cost nothing.

What the constructor prints while it runs is captured, so that a build that is thrown away
(the checkpoint did not cover the model, which is then built for real) does not print twice;
torch's warnings about copying into meta parameters (constructors that load their own weights)
are dropped, since those weights are replaced by the checkpoint's anyway.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

from torch import nn

__all__ = ["CapturedOutput", "capture_output", "model_output_to_stderr", "parameters_on_meta", "tensors_on_meta"]

_patch_lock = threading.Lock()
_META_COPY_WARNING = r".*copying from a non-meta parameter.*"


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Every ``nn.Parameter`` registered inside the block is moved to ``meta`` at once.

    A parameter registered twice (tied across modules) becomes the same meta parameter both
    times, so tying survives; one that is already on ``meta`` is kept as it is.
    """
    original = nn.Module.register_parameter
    moved: dict[int, tuple[weakref.ref, nn.Parameter]] = {}

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            seen = moved.get(id(param))
            if seen is not None and seen[0]() is param:
                param = seen[1]
            else:
                meta = _to_meta(param)
                moved[id(param)] = (weakref.ref(param), meta)
                param = meta
        original(module, name, param)

    with _patch_lock, _hub_kernels_off():
        nn.Module.register_parameter = register  # type: ignore[method-assign]
        try:
            yield
        finally:
            nn.Module.register_parameter = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _hub_kernels_off() -> Iterator[None]:
    """transformers (5.25 on, with the ``kernels`` package) kernelizes a model at the end of
    ``from_pretrained``: it swaps layers' forwards for kernels fetched from the Hub for the
    parameters' device, and refuses ``meta``. A model built with empty parameters has no device
    yet, and paramedit runs the model's own forward (the backward check needs its gradients), so
    the swap is turned off for the build, unless the user set ``USE_HUB_KERNELS`` themselves."""
    if "USE_HUB_KERNELS" in os.environ:
        yield
        return
    os.environ["USE_HUB_KERNELS"] = "0"
    try:
        yield
    finally:
        os.environ.pop("USE_HUB_KERNELS", None)


def _to_meta(param: nn.Parameter) -> nn.Parameter:
    cls = type(param)
    data = param.detach().to("meta")
    try:
        return cls(data, requires_grad=param.requires_grad, **dict(vars(param)))
    except TypeError:  # a Parameter subclass with other constructor arguments
        return nn.Parameter(data, requires_grad=param.requires_grad)


@dataclass
class CapturedOutput:
    """What a block printed and warned, to be shown later (:meth:`replay`) or dropped."""

    stdout: io.StringIO = field(default_factory=io.StringIO)
    stderr: io.StringIO = field(default_factory=io.StringIO)
    warnings: list[warnings.WarningMessage] = field(default_factory=list)

    def replay(self) -> None:
        """Show it now, all on stderr: model output never mixes into a command's stdout."""
        text = self.stdout.getvalue() + self.stderr.getvalue()
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
        for w in self.warnings:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def capture_output() -> Iterator[CapturedOutput]:
    """Capture Python-level stdout, stderr and warnings (torch's meta-copy warnings dropped)."""
    captured = CapturedOutput()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(captured.stdout))
        stack.enter_context(contextlib.redirect_stderr(captured.stderr))
        record = stack.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=_META_COPY_WARNING)
        try:
            yield captured
        finally:
            captured.warnings = list(record)


@contextlib.contextmanager
def model_output_to_stderr() -> Iterator[None]:
    """While model code runs (import, constructor, forward), its prints go to stderr, so a
    command's stdout stays one JSON document."""
    if sys.stdout is sys.stderr:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def tensors_on_meta(model: nn.Module) -> bool:
    """Whether any parameter or buffer of ``model`` is still on ``meta``."""
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))
