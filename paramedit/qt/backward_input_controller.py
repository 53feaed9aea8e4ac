"""Which inputs the backward check runs on, and when the window has to ask for them.

The model's own example needs no question; a Hugging Face model's config says what it takes
(``input_ids`` within the vocabulary, an attention mask, ...), so it needs none either. Any other
model is asked once per session, the dialog pre-filled with the last input given for that model
(remembered across sessions, by spec or class) or else the model's own default (a guess from
its first layer), saying which.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple

from PySide6.QtCore import QObject, QSettings
from PySide6.QtWidgets import QWidget

from paramedit.core.model.inputs import default_input_exprs, huggingface_input_exprs
from paramedit.core.session import Session
from paramedit.qt import prompts
from paramedit.qt.settings import remember_inputs, remembered_inputs

#: Pre-filled when the model gives no hint at all; the dialog says it is only an example.
FALLBACK_INPUT = "randn(2, 5)"


class InputChoice(NamedTuple):
    """What one check runs on."""

    go: bool  # False: the user cancelled the question
    exprs: list[str] | None  # None: what the session already has (its example, its last input)
    asked: bool  # the user typed (or accepted) ``exprs`` in the dialog


def _with_kwargs(spec: str, kwargs: dict | None) -> str:
    """A spec and its keyword arguments: one factory (``AutoModel.from_pretrained``) builds many models."""
    return f"{spec} {json.dumps(kwargs, sort_keys=True, default=str)}" if kwargs else spec


def model_key(session: Session, request_model: Any = None, request_kwargs: dict | None = None) -> str:
    """What inputs are remembered under: the model spec, else the model's class and a short
    fingerprint of its parameter shapes (two ``nn.Sequential`` s, or two configs of one Hugging
    Face class, take different inputs)."""
    if isinstance(request_model, str) and request_model:
        return _with_kwargs(request_model, request_kwargs)
    if session.spec:
        return _with_kwargs(session.spec, request_kwargs)
    model = session.model
    cls = type(model)
    shapes = ";".join(f"{n}:{tuple(p.shape)}" for n, p in model.named_parameters()) if model is not None else ""
    return f"{cls.__module__}.{cls.__qualname__}#{hashlib.sha1(shapes.encode()).hexdigest()[:10]}"


class BackwardInputController(QObject):
    """Decides the inputs of one check (asking when it must) and remembers the ones that worked."""

    def __init__(self, parent: QWidget, settings: QSettings) -> None:
        super().__init__(parent)
        self._parent = parent
        self._settings = settings

    def choose(self, session: Session, key: str, *, ask: bool = False) -> InputChoice:
        """The inputs of the next check; ``ask`` forces the question (the user wants to change
        the input, or the last one failed)."""
        if not ask:
            if session.example_inputs is not None or session.input_exprs:
                return InputChoice(True, None, asked=False)
            # Not the remembered input: a class name does not tell two configs (vocabularies) apart.
            config = huggingface_input_exprs(session.model) if session.model is not None else None
            if config:
                return InputChoice(True, config, asked=False)
        text, source = self.prefill(session, key)
        exprs = prompts.ask_input_expressions(self._parent, text, source)
        return InputChoice(exprs is not None, exprs, asked=exprs is not None)

    def prefill(self, session: Session, key: str) -> tuple[str, str]:
        """(text, where it comes from) for the input dialog."""
        if session.input_exprs:
            return "; ".join(session.input_exprs), "the input of this session's last check"
        remembered = remembered_inputs(key, self._settings)
        if remembered:
            return "; ".join(remembered), "the last input you gave for this model"
        defaults, where = default_input_exprs(session.model) if session.model is not None else (None, "")
        if defaults:
            return "; ".join(defaults), where
        return FALLBACK_INPUT, "an example only: the model gives no hint of what it takes"

    def worked(self, key: str, exprs: list[str] | None) -> None:
        """The check ran on ``exprs``, which the user gave: remember them for this model."""
        if exprs:
            remember_inputs(key, exprs, self._settings)
