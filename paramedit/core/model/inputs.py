"""Inputs for a forward pass: the model's own example, expressions, shapes, or its config's default.

An expression may name a keyword argument of ``forward``: ``attention_mask=int(ones(1, 16))``.
Hugging Face models get default inputs from their config (token ids within the vocabulary, an
attention mask, decoder ids for encoder-decoders, pixel values of the configured size, audio
features), so ``check`` runs on them without ``--input``. For other models, a guess from the
first layer (``nn.Linear(784, 32)`` -> ``randn(2, 784)``) is only ever offered, never used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from paramedit.core.editing.expressions import evaluate_expression
from paramedit.core.errors import BackwardCheckError, ParameditError

INPUT_BUDGET = 50_000_000  # elements per input tensor
DEFAULT_SEQUENCE = 16  # tokens in a default text input
_KEYWORD = re.compile(r"^\s*([A-Za-z_]\w*)\s*=(?!=)(.*)$", re.DOTALL)


@dataclass
class ForwardInputs:
    """Positional and keyword arguments of one ``model(*args, **kwargs)`` call."""

    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def call(self, model: nn.Module) -> Any:
        return model(*self.args, **self.kwargs)

    def to(self, device: torch.device) -> ForwardInputs:
        return ForwardInputs(move_to(self.args, device), move_to(self.kwargs, device))


def move_to(value: Any, device: torch.device) -> Any:
    """Every tensor in nested inputs, on ``device``."""
    if isinstance(value, ForwardInputs):
        return value.to(device)
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: move_to(v, device) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(move_to(v, device) for v in value)
    return value


def split_keyword(text: str) -> tuple[str | None, str]:
    """``"attention_mask=ones(1, 4)"`` -> ("attention_mask", "ones(1, 4)"); a plain expression -> (None, text)."""
    match = _KEYWORD.match(text)
    if match is None:
        return None, text.strip()
    return match.group(1), match.group(2).strip()


def _model_float_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def parse_shape(text: str) -> tuple[int, ...]:
    """``"2,5"`` or ``"(2, 5)"`` -> (2, 5)."""
    cleaned = text.strip().strip("()[]")
    try:
        shape = tuple(int(p) for p in cleaned.split(",") if p.strip())
    except ValueError:
        raise BackwardCheckError(f"--input-shape {text!r} is not a list of integers such as 2,5") from None
    if not shape or any(d < 0 for d in shape):
        raise BackwardCheckError(f"--input-shape {text!r} is not a list of non-negative integers such as 2,5")
    return shape


def evaluate_inputs(exprs: list[str], dtype: torch.dtype, generator: torch.Generator) -> ForwardInputs:
    """Expressions, each positional or ``name=EXPR``, evaluated in order; positional ones first."""
    args: list[torch.Tensor] = []
    kwargs: dict[str, torch.Tensor] = {}
    for text in exprs:
        name, expr = split_keyword(text)
        if not expr:
            raise BackwardCheckError(f"input {text!r} has no expression after '='")
        if name is None and kwargs:
            raise BackwardCheckError(f"input {text!r} is positional but comes after a keyword input; "
                                     "give positional inputs first")
        if name is not None and name in kwargs:
            raise BackwardCheckError(f"input {name!r} is given twice")
        try:
            value = evaluate_expression(expr, numel_budget=INPUT_BUDGET, generator=generator, dtype=dtype)
        except ParameditError as exc:
            raise BackwardCheckError(f"input {text!r}: {exc.message}") from exc
        tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
        if name is None:
            args.append(tensor)
        else:
            kwargs[name] = tensor
    return ForwardInputs(tuple(args), kwargs)


def _config(model: nn.Module) -> Any:
    config = getattr(model, "config", None)
    return config if config is not None and hasattr(config, "to_dict") else None


def _get(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, (int, list, tuple)) and not isinstance(value, bool):
            return value
    return None


def huggingface_input_exprs(model: nn.Module) -> list[str] | None:
    """Default inputs for a Hugging Face model, from its ``main_input_name`` and config; None otherwise."""
    config = _config(model)
    if config is None:
        return None
    main = getattr(model, "main_input_name", "input_ids")
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    exprs: list[str]
    if main == "input_ids":
        vocab = _get(config, "vocab_size")
        if not isinstance(vocab, int) or vocab < 1:
            return None
        n = DEFAULT_SEQUENCE
        limit = _get(config, "n_positions", "max_position_embeddings")
        if isinstance(limit, int) and limit > 0:
            n = min(n, limit)
        exprs = [f"input_ids=randint({vocab}, (1, {n}))", f"attention_mask=int(ones(1, {n}))"]
    elif main == "pixel_values":
        channels = _get(config, "num_channels") or 3
        size = _get(config, "image_size") or 224
        height, width = (size, size) if isinstance(size, int) else (size[0], size[-1])
        exprs = [f"pixel_values=randn(1, {channels}, {height}, {width})"]
    elif main == "input_features":
        mels = _get(config, "num_mel_bins", "feature_size") or 80
        positions = _get(config, "max_source_positions")
        frames = 2 * positions if isinstance(positions, int) else 3000  # Whisper's conv stride is 2
        exprs = [f"input_features=randn(1, {mels}, {frames})"]
    elif main == "input_values":
        exprs = ["input_values=randn(1, 16000)"]
    else:
        return None
    if encoder_decoder:
        vocab = _get(config, "vocab_size")
        if isinstance(vocab, int) and vocab > 0:
            exprs.append(f"decoder_input_ids=randint({vocab}, (1, 8))")
    return exprs


def guessed_input_exprs(model: nn.Module) -> list[str] | None:
    """A guess from the model's first layer, offered to the user (never used without asking)."""
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            return [f"randint({module.num_embeddings}, (1, {DEFAULT_SEQUENCE}))"]
        if isinstance(module, nn.Linear):
            return [f"randn(2, {module.in_features})"]
        if isinstance(module, nn.Conv2d):
            return [f"randn(1, {module.in_channels}, 32, 32)"]
        if isinstance(module, nn.Conv1d):
            return [f"randn(1, {module.in_channels}, 64)"]
        if isinstance(module, nn.Conv3d):
            return [f"randn(1, {module.in_channels}, 8, 16, 16)"]
        if isinstance(module, (nn.RNNBase,)):
            batch_first = getattr(module, "batch_first", False)
            shape = (2, 8, module.input_size) if batch_first else (8, 2, module.input_size)
            return [f"randn{shape}"]
    return None


def default_input_exprs(model: nn.Module) -> tuple[list[str] | None, str]:
    """(expressions, where they come from) to offer for a model that has no example input."""
    exprs = huggingface_input_exprs(model)
    if exprs:
        return exprs, f"from the model's config ({type(model).__name__})"
    exprs = guessed_input_exprs(model)
    if exprs:
        return exprs, "guessed from the model's first layer"
    return None, ""


def build_inputs(
    model: nn.Module,
    *,
    exprs: list[str] | None = None,
    shapes: list[str] | None = None,
    example: tuple | None = None,
    seed: int = 0,
) -> tuple | ForwardInputs:
    """The inputs for one forward pass, in this order of preference: expressions, shapes
    (standard normal), the model's example inputs, a Hugging Face model's config defaults."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    dtype = _model_float_dtype(model)
    if exprs:
        inputs = evaluate_inputs(exprs, dtype, generator)
        return inputs.args if not inputs.kwargs else inputs
    if shapes:
        out = []
        for text in shapes:
            shape = parse_shape(text)
            n = 1
            for d in shape:
                n *= d
            if n > INPUT_BUDGET:
                raise BackwardCheckError(f"--input-shape {text!r} has {n} elements, more than {INPUT_BUDGET}")
            out.append(torch.randn(shape, generator=generator).to(dtype))
        return tuple(out)
    if example is not None:
        return example
    defaults = huggingface_input_exprs(model)
    if defaults:
        return evaluate_inputs(defaults, dtype, generator)
    guess = guessed_input_exprs(model)
    hint = " ".join(f"--input '{e}'" for e in guess) if guess else "--input 'randn(2, 5)' or --input-shape 2,5"
    where = " (guessed from its first layer)" if guess else ""
    raise BackwardCheckError(
        "the model gives no example input (no example_inputs() in its file, no example_input_array); "
        f"pass one, e.g. {hint}{where}; a keyword argument of forward is given as --input 'name=EXPR'"
    )
