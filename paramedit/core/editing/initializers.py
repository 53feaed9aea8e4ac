"""Seeded initialisers for the ``init`` edit: values for a region, made on the CPU.

Values are drawn in float64 on the CPU with a seeded generator, then cast to the target dtype,
so the same edit log gives the same weights whatever device the model is on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.nn import init as nn_init

from paramedit.core.errors import EditError


def _zeros(t, g):
    return t.zero_()


def _ones(t, g):
    return t.fill_(1.0)


def _constant(t, g, value: float = 0.0):
    return t.fill_(float(value))


def _arange(t, g, start: float = 0.0, step: float = 1.0):
    flat = torch.arange(t.numel(), dtype=t.dtype) * step + start
    return t.copy_(flat.reshape(t.shape))


def _normal(t, g, mean: float = 0.0, std: float = 1.0):
    return nn_init.normal_(t, mean=mean, std=std, generator=g)


def _uniform(t, g, a: float = 0.0, b: float = 1.0):
    return nn_init.uniform_(t, a=a, b=b, generator=g)


def _needs_2d(method: str, t: torch.Tensor) -> None:
    if t.dim() < 2:
        raise EditError(f"init method {method!r} needs a region with at least 2 dimensions, got shape {tuple(t.shape)}")


def _xavier_uniform(t, g, gain: float = 1.0):
    _needs_2d("xavier_uniform", t)
    return nn_init.xavier_uniform_(t, gain=gain, generator=g)


def _xavier_normal(t, g, gain: float = 1.0):
    _needs_2d("xavier_normal", t)
    return nn_init.xavier_normal_(t, gain=gain, generator=g)


def _kaiming_uniform(t, g, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    _needs_2d("kaiming_uniform", t)
    return nn_init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nonlinearity, generator=g)


def _kaiming_normal(t, g, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    _needs_2d("kaiming_normal", t)
    return nn_init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nonlinearity, generator=g)


def _eye(t, g):
    if t.dim() != 2:
        raise EditError(f"init method 'eye' needs a 2-D region, got shape {tuple(t.shape)}")
    return nn_init.eye_(t)


def _orthogonal(t, g, gain: float = 1.0):
    _needs_2d("orthogonal", t)
    return nn_init.orthogonal_(t, gain=gain, generator=g)


INIT_METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "zeros": _zeros,
    "ones": _ones,
    "constant": _constant,
    "arange": _arange,
    "normal": _normal,
    "uniform": _uniform,
    "xavier_uniform": _xavier_uniform,
    "xavier_normal": _xavier_normal,
    "kaiming_uniform": _kaiming_uniform,
    "kaiming_normal": _kaiming_normal,
    "eye": _eye,
    "orthogonal": _orthogonal,
}


def init_arguments(method: str) -> dict[str, Any]:
    """The keyword arguments a method takes, with their defaults (for help text and the GUI)."""
    fn = INIT_METHODS[method]
    params = list(inspect.signature(fn).parameters.values())[2:]
    return {p.name: p.default for p in params}


def init_values(
    method: str,
    shape: Sequence[int],
    args: Mapping[str, Any] | None = None,
    seed: int | None = 0,
) -> torch.Tensor:
    """A float64 CPU tensor of ``shape`` filled by ``method`` with ``args``, seeded by ``seed``."""
    if method not in INIT_METHODS:
        raise EditError(f"unknown init method {method!r}; choose one of: {', '.join(INIT_METHODS)}")
    args = dict(args or {})
    allowed = init_arguments(method)
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no arguments"
        raise EditError(f"init method {method!r} does not take {', '.join(unknown)} (it takes {takes})")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(0 if seed is None else int(seed))
    values = torch.empty(tuple(shape), dtype=torch.float64)
    if values.numel() == 0:
        return values
    try:
        INIT_METHODS[method](values, generator, **args)
    except EditError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:
        raise EditError(f"init method {method!r} with {args} failed: {exc}") from exc
    # A constant may be NaN or Inf on purpose; a random draw that is not finite is a bad argument.
    if method != "constant" and not torch.isfinite(values).all():
        raise EditError(f"init method {method!r} with {args} produced non-finite values")
    return values
