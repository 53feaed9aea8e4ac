"""Inputs for the backward check: the model's own example, expressions, or shapes."""

from __future__ import annotations

import torch
from torch import nn

from paramedit.core.errors import BackwardCheckError, ParameditError
from paramedit.core.expressions import evaluate_expression

INPUT_BUDGET = 50_000_000  # elements per input tensor


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


def build_inputs(
    model: nn.Module,
    *,
    exprs: list[str] | None = None,
    shapes: list[str] | None = None,
    example: tuple | None = None,
    seed: int = 0,
) -> tuple:
    """The positional inputs for one forward pass, in this order of preference:
    expressions, shapes (standard normal), the model's example inputs."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    dtype = _model_float_dtype(model)
    if exprs:
        inputs = []
        for text in exprs:
            try:
                value = evaluate_expression(text, numel_budget=INPUT_BUDGET, generator=generator, dtype=dtype)
            except ParameditError as exc:
                raise BackwardCheckError(f"input {text!r}: {exc.message}") from exc
            inputs.append(value if isinstance(value, torch.Tensor) else torch.tensor(value))
        return tuple(inputs)
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
    raise BackwardCheckError(
        "the model gives no example input (no example_inputs() in its file, no example_input_array); "
        "pass one, e.g. --input 'randn(2, 5)' or --input-shape 2,5"
    )
