"""The functions and operators of the formula language (see :mod:`paramedit.core.editing.expressions`).

Every function receives an :class:`EvalContext` first. Anything that allocates checks the
number of elements against ``ctx.budget`` *before* allocating, and operations on plain Python
numbers never build giant integers (``10**10**10`` is computed in float64 and is ``inf``).
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch

from paramedit.core.errors import ExpressionError

__all__ = ["FUNCTIONS", "FUNCTION_TABLE", "SIGNATURES", "EvalContext", "binop", "is_number", "to_tensor"]

#: A matrix product may cost at most this many multiply-adds per element of the budget.
MATMUL_WORK_FACTOR = 1000


@dataclass(frozen=True)
class EvalContext:
    """What one evaluation may use: element budget, random generator, dtypes and device."""

    budget: int
    generator: torch.Generator | None
    dtype: torch.dtype
    float_dtype: torch.dtype
    device: torch.device


def is_number(v) -> bool:
    """Whether ``v`` is a plain Python number (bool, int or float)."""
    return isinstance(v, (int, float))


def _to_float(v) -> float:
    try:
        return float(v)
    except OverflowError:  # an int beyond float64: it is infinite for our purposes
        return math.copysign(math.inf, v)


def _check_numel(ctx: EvalContext, numel: int, what: str) -> None:
    if numel > ctx.budget:
        raise ExpressionError(f"{what} would have {numel:,} elements, more than the limit of {ctx.budget:,}")


def to_tensor(v, ctx: EvalContext):
    """Lists/tuples become tensors; numbers and tensors pass through."""
    if not isinstance(v, tuple):
        return v
    t = torch.tensor(v, device=ctx.device)
    return torch.tensor(v, dtype=ctx.float_dtype, device=ctx.device) if t.is_floating_point() else t


def _scalar_tensor(v) -> torch.Tensor:
    dtype = torch.bool if isinstance(v, bool) else torch.int64 if isinstance(v, int) else torch.float64
    return torch.tensor(v, dtype=dtype)


def _broadcast(ctx: EvalContext, *values) -> None:
    shapes = [tuple(v.shape) for v in values if isinstance(v, torch.Tensor)]
    try:
        shape = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        raise ExpressionError(f"shapes {' and '.join(map(str, shapes))} cannot be broadcast together") from None
    _check_numel(ctx, math.prod(shape), "the result")


# --- plain numbers --------------------------------------------------------------------------


def _scalar_pow(a, b):
    if isinstance(a, int) and isinstance(b, int) and b >= 0:
        if abs(a) <= 1 or b * math.log2(abs(a)) <= 64:
            result = a**b  # at most ~64 bits, so cheap
            if -(2**63) <= result < 2**63:
                return result  # exact, and fits the int64 tensors it may meet
    # Anything bigger is computed in float64 (inf when it overflows), never as a giant int.
    return float(torch.tensor(_to_float(a), dtype=torch.float64).pow(_to_float(b)))


def _scalar_binop(sym: str, a, b):
    if sym == "**":
        return _scalar_pow(a, b)
    if sym in ("&", "|"):
        if isinstance(a, float) or isinstance(b, float):
            raise ExpressionError(f"{sym} needs booleans (e.g. (x > 0) & (x < 1)) or integers")
        if isinstance(a, bool) and isinstance(b, bool):
            return (a and b) if sym == "&" else (a or b)
        return _OPS[sym](a, b)
    if sym == "@":
        raise ExpressionError("@ (matrix product) needs two tensors")
    if sym in ("//", "%") and isinstance(a, int) and isinstance(b, int) and b == 0:
        raise ExpressionError("integer division by zero")
    try:
        return _OPS[sym](a, b)
    except (ZeroDivisionError, OverflowError):
        # IEEE semantics (1/0 = inf), like tensors have.
        return float(_OPS[sym](torch.tensor(_to_float(a), dtype=torch.float64), _to_float(b)))


_OPS: dict[str, Callable] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "@": operator.matmul,
    "&": operator.and_, "|": operator.or_, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def _matmul_check(ctx: EvalContext, a, b) -> None:
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.dim() == 0 or b.dim() == 0:
        raise ExpressionError("@ (matrix product) needs two tensors of at least one dimension")
    sa = (1, *a.shape) if a.dim() == 1 else tuple(a.shape)
    sb = (*b.shape, 1) if b.dim() == 1 else tuple(b.shape)
    if sa[-1] != sb[-2]:
        raise ExpressionError(f"cannot matrix-multiply shapes {tuple(a.shape)} and {tuple(b.shape)}")
    try:
        batch = torch.broadcast_shapes(sa[:-2], sb[:-2])
    except RuntimeError:
        raise ExpressionError(f"cannot matrix-multiply shapes {tuple(a.shape)} and {tuple(b.shape)}") from None
    numel = math.prod(batch) * sa[-2] * sb[-1]
    _check_numel(ctx, numel, "the matrix product")
    if numel * sa[-1] > MATMUL_WORK_FACTOR * ctx.budget:
        raise ExpressionError(f"the matrix product needs {numel * sa[-1]:,} multiply-adds, too many")


def binop(ctx: EvalContext, sym: str, a, b):
    """Apply the operator ``sym`` (``+``, ``<=``, ``@``, ...) after checking the result's size."""
    a, b = to_tensor(a, ctx), to_tensor(b, ctx)
    if is_number(a) and is_number(b):
        return _scalar_binop(sym, a, b)
    if sym == "@":
        _matmul_check(ctx, a, b)
        common = torch.promote_types(a.dtype, b.dtype)  # matmul does not promote by itself
        a, b = a.to(common), b.to(common)
    else:
        _broadcast(ctx, a, b)
    floating = [isinstance(v, float) or (isinstance(v, torch.Tensor) and v.is_floating_point()) for v in (a, b)]
    if sym in ("&", "|") and any(floating):
        raise ExpressionError(f"{sym} needs booleans (e.g. (x > 0) & (x < 1)) or integers")
    if sym == "/" and not any(floating) and isinstance(a, torch.Tensor):
        a = a.to(ctx.float_dtype)  # int / int gives the formula's float dtype, not float32
    return _OPS[sym](a, b)


# --- functions --------------------------------------------------------------------------------

FUNCTION_TABLE: dict[str, Callable] = {}


def _function(*names: str):
    def register(fn: Callable) -> Callable:
        for name in names or (fn.__name__.strip("_"),):
            FUNCTION_TABLE[name] = fn
        return fn

    return register


def _int_arg(v, what: str, *, allow_negative: bool = False) -> int:
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_floating_point() and v.dtype != torch.bool:
        v = int(v.item())
    if not isinstance(v, int) or isinstance(v, bool):
        raise ExpressionError(f"{what} must be a whole number, got {v!r}")
    if v < 0 and not allow_negative:
        raise ExpressionError(f"{what} must not be negative, got {v}")
    return v


def _shape(args: tuple, name: str, *, allow_minus_one: bool = False) -> tuple[int, ...]:
    items = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
    dims = tuple(_int_arg(d, f"{name}() shape entries", allow_negative=allow_minus_one) for d in items)
    if any(d < -1 for d in dims):
        raise ExpressionError(f"{name}() shape entries must be non-negative (or -1), got {dims}")
    return dims


def _alloc(ctx: EvalContext, shape: tuple[int, ...], name: str) -> tuple[int, ...]:
    _check_numel(ctx, math.prod(shape), f"{name}{shape}")
    return shape


def _unary(fn: Callable, int_ok: bool) -> Callable:
    def apply(ctx: EvalContext, x):
        x = to_tensor(x, ctx)
        t = _scalar_tensor(x) if is_number(x) else x
        if t.dtype == torch.bool:
            t = t.to(torch.int64)  # torch has no abs/sign/... for bool
        if not int_ok and not t.is_floating_point():
            t = t.to(torch.float64 if is_number(x) else ctx.float_dtype)
        result = fn(t)
        return result.item() if is_number(x) else result

    return apply


for _name, _fn, _int_ok in [
    ("abs", torch.abs, True), ("sign", torch.sign, True), ("sqrt", torch.sqrt, False),
    ("exp", torch.exp, False), ("log", torch.log, False), ("log2", torch.log2, False),
    ("log10", torch.log10, False), ("sin", torch.sin, False), ("cos", torch.cos, False),
    ("tan", torch.tan, False), ("tanh", torch.tanh, False), ("sigmoid", torch.sigmoid, False),
    ("relu", torch.relu, True), ("floor", torch.floor, True), ("ceil", torch.ceil, True),
]:  # fmt: skip
    FUNCTION_TABLE[_name] = _unary(_fn, _int_ok)


@_function("round")
def _round(ctx: EvalContext, x, decimals=0):
    decimals = _int_arg(decimals, "round() decimals", allow_negative=True)
    return _unary(lambda t: torch.round(t, decimals=decimals) if decimals else torch.round(t), True)(ctx, x)


def _float_input(ctx: EvalContext, x) -> torch.Tensor:
    x = to_tensor(x, ctx)
    t = torch.as_tensor(x, device=ctx.device) if is_number(x) else x
    return t if t.is_floating_point() else t.to(ctx.float_dtype)


def _reduction(fn: Callable, needs_float: bool) -> Callable:
    def apply(ctx: EvalContext, x):
        x = to_tensor(x, ctx)
        t = _float_input(ctx, x) if needs_float else torch.as_tensor(x, device=ctx.device)
        if t.numel() == 0 and fn in (torch.amin, torch.amax):
            raise ExpressionError("min() and max() of an empty tensor are undefined")
        if fn is torch.std and t.numel() < 2:
            return torch.full((), math.nan, dtype=t.dtype, device=t.device)  # torch would also warn
        return fn(t)

    return apply


for _name, _fn, _needs_float in [
    ("mean", torch.mean, True), ("sum", torch.sum, False), ("min", torch.amin, False),
    ("max", torch.amax, False), ("std", torch.std, True), ("norm", torch.linalg.vector_norm, True),
]:  # fmt: skip
    FUNCTION_TABLE[_name] = _reduction(_fn, _needs_float)


@_function()
def _quantile(ctx: EvalContext, x, q):
    """The ``q`` quantile of ``x``'s values, interpolated as torch.quantile and NumPy do, but of
    any size (torch.quantile refuses more than 16M values): two kthvalue calls."""
    if not is_number(q) or not 0 <= float(q) <= 1:
        raise ExpressionError(f"quantile() q must be a number from 0 to 1, got {q!r}")
    t = _float_input(ctx, x).reshape(-1)
    if t.numel() == 0:
        raise ExpressionError("quantile() of an empty tensor is undefined")
    position = float(q) * (t.numel() - 1)
    lo, hi = math.floor(position), math.ceil(position)
    low = torch.kthvalue(t, lo + 1).values
    high = low if hi == lo else torch.kthvalue(t, hi + 1).values
    return low + (high - low) * (position - lo)


@_function()
def _where(ctx: EvalContext, cond, a, b):
    cond, a, b = (to_tensor(v, ctx) for v in (cond, a, b))
    if not isinstance(cond, torch.Tensor):
        return a if cond else b
    if cond.dtype != torch.bool:
        raise ExpressionError("the condition must be boolean, e.g. where(x > 0, x, 0)")
    _broadcast(ctx, cond, a, b)
    return torch.where(cond, a, b)


def _pairwise(fn: Callable) -> Callable:
    def apply(ctx: EvalContext, a, b):
        a, b = to_tensor(a, ctx), to_tensor(b, ctx)
        if is_number(a) and is_number(b):
            return fn(_scalar_tensor(a), _scalar_tensor(b)).item()
        _broadcast(ctx, a, b)
        ta = a if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=torch.result_type(b, a))
        tb = b if isinstance(b, torch.Tensor) else torch.tensor(b, dtype=torch.result_type(a, b))
        return fn(ta.to(ctx.device), tb.to(ctx.device))

    return apply


FUNCTION_TABLE["minimum"] = _pairwise(torch.minimum)
FUNCTION_TABLE["maximum"] = _pairwise(torch.maximum)


@_function()
def _clamp(ctx: EvalContext, x, min=None, max=None):
    # torch.clamp wants bounds that are all numbers or all tensors; maximum/minimum mix freely
    # and give the same result (NaN propagates; min > max gives max, as in torch.clamp).
    if min is None and max is None:
        raise ExpressionError("clamp() needs min, max or both")
    if min is not None:
        x = FUNCTION_TABLE["maximum"](ctx, x, min)
    if max is not None:
        x = FUNCTION_TABLE["minimum"](ctx, x, max)
    return x


@_function()
def _zeros(ctx: EvalContext, *shape):
    return torch.zeros(_alloc(ctx, _shape(shape, "zeros"), "zeros"), dtype=ctx.dtype, device=ctx.device)


@_function()
def _ones(ctx: EvalContext, *shape):
    return torch.ones(_alloc(ctx, _shape(shape, "ones"), "ones"), dtype=ctx.dtype, device=ctx.device)


@_function()
def _full(ctx: EvalContext, shape, value):
    dims = _alloc(ctx, _shape((shape,), "full"), "full")
    if not is_number(value):
        raise ExpressionError("full() value must be a number")
    dtype = ctx.float_dtype if isinstance(value, float) and not ctx.dtype.is_floating_point else ctx.dtype
    return torch.full(dims, value, dtype=dtype, device=ctx.device)


@_function()
def _arange(ctx: EvalContext, start, end=None, step=1):
    if end is None:
        start, end = 0, start
    if not all(is_number(v) for v in (start, end, step)) or step == 0:
        raise ExpressionError("arange() takes numbers and a non-zero step")
    if all(isinstance(v, int) for v in (start, end, step)):
        count, dtype = max(0, -((start - end) // step)), torch.int64
    else:
        span = (_to_float(end) - _to_float(start)) / _to_float(step)
        if not math.isfinite(span):
            raise ExpressionError("arange() bounds must be finite")
        count, dtype = max(0, math.ceil(span)), ctx.float_dtype
    _check_numel(ctx, count, "arange()")
    return torch.arange(start, end, step, dtype=dtype, device=ctx.device)


@_function()
def _linspace(ctx: EvalContext, start, end, steps):
    steps = _int_arg(steps, "linspace() steps")
    _check_numel(ctx, steps, "linspace()")
    return torch.linspace(start, end, steps, dtype=ctx.float_dtype, device=ctx.device)


@_function()
def _eye(ctx: EvalContext, n, m=None):
    n = _int_arg(n, "eye() size")
    m = n if m is None else _int_arg(m, "eye() size")
    return torch.eye(*_alloc(ctx, (n, m), "eye"), dtype=ctx.dtype, device=ctx.device)


def _random(ctx: EvalContext, fn: Callable, shape: tuple[int, ...], name: str) -> torch.Tensor:
    dims = _alloc(ctx, shape, name)
    return fn(dims, generator=ctx.generator, dtype=ctx.float_dtype, device=ctx.device)


@_function()
def _randn(ctx: EvalContext, *shape):
    return _random(ctx, torch.randn, _shape(shape, "randn"), "randn")


@_function()
def _rand(ctx: EvalContext, *shape):
    return _random(ctx, torch.rand, _shape(shape, "rand"), "rand")


@_function()
def _randint(ctx: EvalContext, *args):
    shape: tuple[int, ...] = ()
    if args and isinstance(args[-1], tuple):
        args, shape = args[:-1], _shape((args[-1],), "randint")
    if len(args) not in (1, 2):
        raise ExpressionError("randint() takes (high), (high, shape), (low, high) or (low, high, shape)")
    low, high = (0, *args) if len(args) == 1 else args
    low, high = _int_arg(low, "randint() low", allow_negative=True), _int_arg(high, "randint() high", allow_negative=True)
    if not -(2**63) <= low < high <= 2**63 - 1:
        raise ExpressionError(f"randint() needs low < high within int64, got low={low}, high={high}")
    dims = _alloc(ctx, shape, "randint")
    return torch.randint(low, high, dims, generator=ctx.generator, dtype=torch.int64, device=ctx.device)


@_function()
def _normal(ctx: EvalContext, mean, std, *shape):
    mean, std = to_tensor(mean, ctx), to_tensor(std, ctx)
    for v in (mean, std):
        if not (is_number(v) or isinstance(v, torch.Tensor)):
            raise ExpressionError("normal() mean and std must be numbers or tensors")
    if (std < 0).any() if isinstance(std, torch.Tensor) else std < 0:
        raise ExpressionError("normal() std must not be negative")
    shapes = [tuple(v.shape) for v in (mean, std) if isinstance(v, torch.Tensor)]
    try:
        out = torch.broadcast_shapes(*shapes, _shape(shape, "normal"))
    except RuntimeError:
        raise ExpressionError(f"normal(): shapes {shapes} and {shape} cannot be broadcast together") from None
    return mean + std * _random(ctx, torch.randn, tuple(out), "normal")


def _like(kind: str) -> Callable:
    def apply(ctx: EvalContext, t):
        t = to_tensor(t, ctx)
        if not isinstance(t, torch.Tensor):
            raise ExpressionError(f"{kind}_like() takes a tensor, e.g. {kind}_like(x)")
        if kind in ("zeros", "ones"):
            return (torch.zeros_like if kind == "zeros" else torch.ones_like)(t)
        dtype = t.dtype if t.is_floating_point() else ctx.float_dtype
        fn = torch.randn if kind == "randn" else torch.rand
        return fn(tuple(t.shape), generator=ctx.generator, dtype=dtype, device=t.device)

    return apply


for _kind in ("zeros", "ones", "randn", "rand"):
    FUNCTION_TABLE[f"{_kind}_like"] = _like(_kind)


@_function()
def _reshape(ctx: EvalContext, t, *shape):
    return torch.reshape(torch.as_tensor(to_tensor(t, ctx)), _shape(shape, "reshape", allow_minus_one=True))


@_function()
def _transpose(ctx: EvalContext, t, dim0, dim1):
    dim0, dim1 = (_int_arg(d, "transpose() dims", allow_negative=True) for d in (dim0, dim1))
    return torch.transpose(torch.as_tensor(to_tensor(t, ctx)), dim0, dim1)


@_function()
def _flip(ctx: EvalContext, t, *dims):
    items = dims[0] if len(dims) == 1 and isinstance(dims[0], tuple) else dims
    dims = tuple(_int_arg(d, "flip() dims", allow_negative=True) for d in items)
    return torch.flip(torch.as_tensor(to_tensor(t, ctx)), dims)


@_function("float")
def _float(ctx: EvalContext, x):
    x = to_tensor(x, ctx)
    if is_number(x):
        return _to_float(x)
    return x if x.is_floating_point() else x.to(ctx.float_dtype)


@_function("int")
def _int(ctx: EvalContext, x):
    x = to_tensor(x, ctx)
    if isinstance(x, float) and not math.isfinite(x):
        raise ExpressionError(f"int() cannot convert {x} to an integer")
    if is_number(x):
        return int(x)
    if x.is_floating_point():
        if not bool(torch.isfinite(x).all()):
            raise ExpressionError("int() cannot convert NaN or infinity to an integer")
        if x.numel() and float(x.abs().max()) >= 2.0**63:  # the cast would wrap silently
            raise ExpressionError("int() of a value beyond the int64 range")
    return x.to(torch.int64)


FUNCTIONS: frozenset[str] = frozenset(FUNCTION_TABLE)
SIGNATURES = {
    name: inspect.signature(fn).replace(parameters=list(inspect.signature(fn).parameters.values())[1:])
    for name, fn in FUNCTION_TABLE.items()
}
