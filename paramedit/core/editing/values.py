"""Validating values for a tensor's dtype: typed text, scalars, nested lists, arrays, pastes.

Like Spyder's array editor, a value is accepted only if the dtype can hold it: no silent
overflow (``300`` into ``int8``), no silent truncation (``2.5`` into an integer dtype), no NaN
in integers. Rounding to a float's precision is fine (``0.1`` into ``bfloat16``). Whole tensors
are checked with a few vectorised torch passes, never a Python loop over the elements.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

import numpy as np
import torch

from paramedit.core.errors import ValueValidationError

__all__ = [
    "MAX_NUMBER_TEXT", "check_scalar", "format_tsv", "parse_number", "parse_tsv", "stored_value",
    "to_values", "tsv_to_values",
]  # fmt: skip

#: Longer cell text is refused; no real number needs more.
MAX_NUMBER_TEXT = 400
_MAX_NESTING = 64
_INT64 = torch.iinfo(torch.int64)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL = {
    "true": True, "false": False,
    "nan": math.nan, "+nan": math.nan, "-nan": math.nan,
    "inf": math.inf, "+inf": math.inf, "-inf": -math.inf,
    "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf,
}  # fmt: skip
_COMPLEX = "complex tensors are read-only in paramedit"


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _kind(dtype: torch.dtype) -> str:
    """'bool', 'int' or 'float'; refuses dtypes paramedit cannot edit."""
    if dtype.is_complex:
        raise ValueValidationError(_COMPLEX)
    if dtype == torch.bool:
        return "bool"
    if dtype.is_floating_point:
        return "float"
    try:
        torch.iinfo(dtype)
    except TypeError:
        raise ValueValidationError(f"{_name(dtype)} tensors cannot be edited in paramedit") from None
    return "int"


@functools.cache
@functools.cache
def _has_inf(dtype: torch.dtype) -> bool:
    # float8 "fn"/"fnuz" formats have no infinity: out-of-range casts saturate or give NaN.
    return math.isinf(torch.tensor(math.inf).to(dtype).to(torch.float32).item())


def parse_number(text: str) -> int | float | bool:
    """Parse one typed or pasted number: ``1.5``, ``-3``, ``1e-3``, ``nan``, ``-inf``, ``true``.

    Decimal notation only (no ``0x10``, no ``1_000``), point as the decimal separator, leading
    and trailing whitespace ignored. Raises :class:`ValueValidationError` with the reason.
    """
    if not isinstance(text, str):
        raise ValueValidationError(f"expected text, got {type(text).__name__}")
    s = text.strip()
    if not s:
        raise ValueValidationError("empty value")
    if len(s) > MAX_NUMBER_TEXT:
        raise ValueValidationError(f"value is longer than {MAX_NUMBER_TEXT} characters")
    special = _SPECIAL.get(s.lower())
    if special is not None:
        return special
    if _NUMBER.fullmatch(s):
        if not any(c in s for c in ".eE"):
            return int(s)
        value = float(s)
        if math.isinf(value):
            raise ValueValidationError(f"{s} is too large (beyond float64); use inf for infinity")
        return value
    if re.fullmatch(r"[+-]?[0-9.]*,[0-9,.]*(?:[eE][+-]?[0-9]+)?", s) and any(c.isdigit() for c in s):
        raise ValueValidationError(f"{s!r}: use a point (.) as the decimal separator and no thousands separators")
    if re.fullmatch(r"[+-]?[0-9.]+(?:\s+[0-9.]+)+", s):
        raise ValueValidationError(f"{s!r}: spaces inside a number are not allowed")
    if re.fullmatch(r"[+-]?0[xXbBoO][0-9a-fA-F_]*", s):
        raise ValueValidationError(f"{s!r}: only decimal numbers are supported")
    shown = s if len(s) <= 40 else s[:37] + "..."
    raise ValueValidationError(f"{shown!r} is not a number")


def _python_scalar(value) -> int | float | bool:
    """A plain Python number from Python/NumPy scalars and one-element tensors or arrays."""
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        if (value.numel() if isinstance(value, torch.Tensor) else np.size(value)) != 1:
            raise ValueValidationError(f"expected a single number, got an array of shape {list(value.shape)}")
        value = value.item()
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, complex):
        raise ValueValidationError(_COMPLEX)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ValueValidationError(f"expected a number, got the text {shown!r}")
    raise ValueValidationError(f"expected a number, got {type(value).__name__}")


def _shown(value) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return text if len(text) <= 30 else f"{text[:12]}... ({len(text)} digits)"


def check_scalar(value, dtype: torch.dtype) -> int | float | bool:
    """Check that ``dtype`` can hold ``value``; return the Python value to write.

    Raises :class:`ValueValidationError` for overflow (``1e40`` into ``float32``, ``300`` into
    ``int8``, ``-1`` into ``uint8``), a fraction or NaN/inf into an integer or bool dtype, and
    anything but ``True``/``False``/``0``/``1`` into ``bool``. Values that merely round are fine.
    """
    kind = _kind(dtype)
    value = _python_scalar(value)
    name = _name(dtype)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise ValueValidationError(f"{_shown(value)} cannot be stored in bool (only True/False or 0/1)")
    if kind == "int":
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueValidationError(f"{value} cannot be stored in {name}, which has no NaN or infinity")
            if not value.is_integer():
                raise ValueValidationError(f"{value!r} has a fractional part; {name} stores whole numbers")
        result = int(value)
        info = torch.iinfo(dtype)
        if not info.min <= result <= info.max:
            raise ValueValidationError(f"{_shown(value)} is out of range for {name} ({info.min} to {info.max})")
        return result
    out_of_range = f"{_shown(value)} is out of range for {name} (largest magnitude {torch.finfo(dtype).max:.8g})"
    try:
        result = float(value)
    except OverflowError:  # an int beyond float64
        raise ValueValidationError(out_of_range) from None
    # Fast path (a cell edit): NaN/Inf and anything within the dtype's range are always storable.
    if _has_inf(dtype) and (not math.isfinite(result) or abs(result) <= torch.finfo(dtype).max):
        return result
    as64 = torch.tensor(result, dtype=torch.float64)
    if bool(_overflow(as64, as64.to(dtype), dtype)):
        raise ValueValidationError(out_of_range)
    return result


def stored_value(value, dtype: torch.dtype) -> int | float | bool:
    """The value ``dtype`` actually stores for ``value`` (0.1 into bfloat16 -> 0.10009765625)."""
    checked = check_scalar(value, dtype)
    if isinstance(checked, float):
        return torch.tensor(checked, dtype=torch.float64).to(dtype).item()
    return checked


def _overflow(src: torch.Tensor, out: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Mask of finite source values the cast to ``dtype`` turned infinite/NaN or saturated."""
    if src.dtype == torch.bool:
        return torch.zeros(src.shape, dtype=torch.bool)
    if out.dtype.itemsize == 1:  # float8 has few kernels; float32 holds its values exactly
        out = out.to(torch.float32)
    mask = torch.isfinite(src) & ~torch.isfinite(out)
    if not _has_inf(dtype):
        # Casts to these saturate, so compare with the rounding threshold: max + half an ulp.
        finfo = torch.finfo(dtype)
        threshold = finfo.max + 2.0 ** math.floor(math.log2(finfo.max)) * finfo.eps / 2
        mask |= torch.isinf(src) | (src.to(torch.float64).abs() >= threshold)
    return mask


def _position(flat: int, shape: tuple[int, ...]) -> list[int]:
    index = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size)
        index.append(rest)
    return index[::-1]


def _raise_at(mask: torch.Tensor, src: torch.Tensor, reason) -> None:
    """Raise naming the first element where ``mask`` holds, if any."""
    flat_mask = mask.reshape(-1)
    if not bool(flat_mask.any()):
        return
    flat = int(torch.argmax(flat_mask.to(torch.uint8)))  # argmax gives the first maximum
    value = src.reshape(-1)[flat].item()
    raise ValueValidationError(f"value at {_position(flat, tuple(src.shape))} ({_shown(value)}) {reason(value)}")


def _validate(src: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A new CPU tensor of ``dtype`` with the values of ``src``, or an error naming a bad one."""
    kind, name = _kind(dtype), _name(dtype)
    if kind == "bool":
        if src.dtype != torch.bool:
            _raise_at((src != 0) & (src != 1), src, lambda v: "cannot be stored in bool (only True/False or 0/1)")
        return src.to(torch.bool, copy=True)
    if kind == "int":
        if src.is_floating_point():
            _raise_at(~torch.isfinite(src), src, lambda v: f"cannot be stored in {name}, which has no NaN or infinity")
            _raise_at(src != torch.trunc(src), src, lambda v: f"has a fractional part; {name} stores whole numbers")
        if src.numel() and src.dtype != torch.bool:
            info, flat = torch.iinfo(dtype), src.reshape(-1)
            # The two extremes decide the range; Python compares them exactly (no float rounding).
            for i in (int(torch.argmin(flat)), int(torch.argmax(flat))):
                v = flat[i].item()
                if not info.min <= v <= info.max:
                    raise ValueValidationError(
                        f"value at {_position(i, tuple(src.shape))} ({_shown(v)}) is out of range for "
                        f"{name} ({info.min} to {info.max})"
                    )
        return src.to(dtype, copy=True)
    out = src.to(dtype, copy=True)
    finfo = torch.finfo(dtype)
    _raise_at(_overflow(src, out, dtype), src, lambda v: f"is out of range for {name} (largest magnitude {finfo.max:.8g})")
    return out


def _nested_shape(value) -> list[int]:
    shape: list[int] = []
    while isinstance(value, (list, tuple)):
        shape.append(len(value))
        if len(shape) > _MAX_NESTING:
            raise ValueValidationError(f"lists are nested more than {_MAX_NESTING} levels deep")
        if not value:
            break
        value = value[0]
    return shape


def _from_nested(value, dtype: torch.dtype) -> torch.Tensor:
    """A source tensor from nested lists, refusing ragged lists and non-numbers by position."""
    shape = _nested_shape(value)
    flat: list = []

    def walk(item, path: list[int]) -> None:
        depth = len(path)
        if depth < len(shape):
            if not isinstance(item, (list, tuple)) or len(item) != shape[depth]:
                got = f"{len(item)} item(s)" if isinstance(item, (list, tuple)) else "a single value"
                raise ValueValidationError(f"ragged list: element {path} has {got}, expected {shape[depth]} item(s)")
            for i, child in enumerate(item):
                walk(child, [*path, i])
        elif isinstance(item, (list, tuple)):
            raise ValueValidationError(f"ragged list: element {path} is a list, expected a number")
        else:
            try:
                flat.append(_python_scalar(item))
            except ValueValidationError as exc:
                raise ValueValidationError(f"element {path}: {exc.message}") from None

    walk(value, [])
    if all(isinstance(v, bool) for v in flat) and flat:
        return torch.tensor(flat, dtype=torch.bool).reshape(shape)
    if any(isinstance(v, float) for v in flat):
        try:
            return torch.tensor(flat, dtype=torch.float64).reshape(shape)
        except (OverflowError, RuntimeError):
            raise ValueValidationError("a value is too large to store (beyond float64)") from None
    if all(_INT64.min <= v <= _INT64.max for v in flat):
        return torch.tensor(flat, dtype=torch.int64).reshape(shape)
    # Integers beyond int64 (rare): check them one by one for exact messages.
    for i, v in enumerate(flat):
        try:
            check_scalar(v, dtype)
        except ValueValidationError as exc:
            raise ValueValidationError(f"element {_position(i, tuple(shape))}: {exc.message}") from None
    target = dtype if _kind(dtype) == "int" else torch.float64
    return torch.tensor([float(v) if target == torch.float64 else v for v in flat], dtype=target).reshape(shape)


def _from_numpy(arr: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueValidationError(_COMPLEX)
    if kind == "O":
        return _from_nested(arr.tolist(), dtype) if arr.ndim else torch.tensor(_python_scalar(arr.item()))
    if kind not in "biuf":
        raise ValueValidationError(f"expected numbers, got a NumPy array of {arr.dtype}")
    if kind == "u" and arr.dtype.itemsize > 1:  # torch has little support for uint16/32/64 math
        too_big = arr.dtype.itemsize == 8 and arr.size and int(arr.max()) > _INT64.max
        if too_big and _kind(dtype) != "float":
            raise ValueValidationError(f"{int(arr.max())} is out of range for {_name(dtype)}")
        arr = arr.astype(np.float64 if too_big else np.int64)
    if kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype(np.float64)
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = np.array(arr, order="C")  # from_numpy wants a writeable, contiguous buffer
    return torch.from_numpy(arr)


def to_values(value, dtype: torch.dtype, shape: Sequence[int]) -> torch.Tensor:
    """A new CPU tensor of exactly ``shape`` and ``dtype`` holding ``value``, every element validated.

    ``value`` is a scalar (broadcast), a nested list, a NumPy array or a tensor of ``shape``
    (0-d arrays and tensors broadcast like scalars). Raises :class:`ValueValidationError` for
    values the dtype cannot hold, ragged lists, a wrong shape, text or ``None``.
    """
    _kind(dtype)
    shape = tuple(int(d) for d in shape)
    if value is None:
        raise ValueValidationError("no value given")
    if isinstance(value, (str, bytes)):
        shown = value if isinstance(value, str) else value.decode("utf-8", "replace")
        raise ValueValidationError(f"expected a number or a list of numbers, got text: {shown[:40]!r} "
                                   "(in an edit log, write numbers without quotes)")
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise ValueValidationError(_COMPLEX)
        if value.layout != torch.strided or value.is_quantized or value.device.type == "meta":
            raise ValueValidationError("only ordinary dense tensors can be used as values")
        src = value.detach().to("cpu")
        if src.is_floating_point() and src.element_size() == 1:
            src = src.to(torch.float32)  # float8 lacks the kernels validation needs; float32 is exact
        if src.dtype in (torch.uint16, torch.uint32, torch.uint64):
            src = _from_numpy(src.numpy(), dtype)
    elif isinstance(value, np.ndarray):
        src = _from_numpy(value, dtype)
    elif isinstance(value, (list, tuple)):
        src = _from_nested(value, dtype)
    else:
        checked = check_scalar(value, dtype)
        # Round through float64 exactly as stored_value does, then broadcast.
        scalar = torch.tensor(checked, dtype=torch.float64 if isinstance(checked, float) else dtype)
        return scalar.to(dtype).expand(shape).contiguous()
    if src.dim() == 0:
        return _validate(src, dtype).expand(shape).contiguous()
    if tuple(src.shape) != shape:
        # As copy_ would: a 3x3 kernel pasted into every input channel of an output channel
        # ([2, :, :, :], shape 3x3x3) repeats along the leading dimensions it lacks.
        if src.dim() > len(shape) or not _broadcasts(tuple(src.shape), shape):
            raise ValueValidationError(f"expected values of shape {list(shape)}, got shape {list(src.shape)} "
                                       "(a smaller block is repeated only along leading dimensions it lacks)")
        return _validate(src, dtype).expand(shape).contiguous()
    return _validate(src, dtype)


def _broadcasts(src: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """``src`` fills ``shape`` by repeating along the leading dimensions only (not a size-1 dim of
    its own: a row pasted over a block is more likely a mistake than an intent)."""
    return len(src) < len(shape) and src == shape[len(shape) - len(src):]


def parse_tsv(text: str) -> list[list[str]]:
    """Split a spreadsheet paste into rows (``\\n`` or ``\\r\\n``) of cells (``\\t``).

    One trailing newline is ignored. Rows of different lengths and empty text raise
    :class:`ValueValidationError`.
    """
    if not isinstance(text, str):
        raise ValueValidationError(f"expected text, got {type(text).__name__}")
    text = text.replace("\r\n", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise ValueValidationError("nothing to paste: the text is empty")
    rows = [line.split("\t") for line in text.split("\n")]
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise ValueValidationError(f"row {number} has {len(row)} cell(s), but row 1 has {width}")
    return rows


def tsv_to_values(text: str, dtype: torch.dtype, shape: Sequence[int] | None = None) -> torch.Tensor:
    """Parse and validate a spreadsheet paste into a 2-D CPU tensor of ``dtype``.

    Errors name the row and column (1-based). With ``shape`` the paste must match it; a single
    row or column may also fill a 1-D region (and a single cell a 0-d one).
    """
    kind = _kind(dtype)
    rows = parse_tsv(text)
    values: list[list] = []
    for r, row in enumerate(rows, start=1):
        out: list = []
        for c, cell in enumerate(row, start=1):
            try:
                out.append(check_scalar(parse_number(cell), dtype))
            except ValueValidationError as exc:
                raise ValueValidationError(f"row {r}, column {c}: {exc.message}") from None
        values.append(out)
    if kind == "float":  # via float64, the same rounding as check_scalar and stored_value
        result = torch.tensor(values, dtype=torch.float64).to(dtype)
    else:
        result = torch.tensor(values, dtype=dtype)
    if shape is None:
        return result
    shape = tuple(int(d) for d in shape)
    got = tuple(result.shape)
    if shape == got:
        return result
    if len(shape) <= 1 and 1 in got and math.prod(shape) == result.numel():
        return result.reshape(shape)
    raise ValueValidationError(f"pasted {got[0]}×{got[1]} cells, but the region has shape {list(shape)}")


def _shortest_float_text(flat: torch.Tensor) -> list[str]:
    """Shortest decimal text of each element that reads back to exactly the same value."""
    as64 = flat.to(torch.float64)
    if flat.dtype == torch.float64:
        return [repr(v) for v in as64.tolist()]
    if flat.dtype in (torch.float32, torch.float16):
        np_type = np.float32 if flat.dtype == torch.float32 else np.float16
        texts = as64.numpy().astype(np_type).astype(str).tolist()  # NumPy's shortest repr, in C
        pending = list(range(len(texts)))
        precisions: list[int | None] = [None]
    else:  # bfloat16, float8: search the precision (at most a few digits) element by element
        texts = [""] * flat.numel()
        pending = list(range(flat.numel()))
        precisions = list(range(1, 18))
    values = as64.tolist()
    for precision in precisions:
        if precision is not None:
            for i in pending:
                texts[i] = repr(float(format(values[i], f".{precision}g")))
        # Compare in float64, which holds every smaller float exactly (float8 has no == kernel).
        back = torch.tensor([float(texts[i]) for i in pending], dtype=torch.float64).to(flat.dtype).to(torch.float64)
        orig = as64[pending]
        same = ((back == orig) & (torch.signbit(back) == torch.signbit(orig))) | (back.isnan() & orig.isnan())
        pending = [i for i, ok in zip(pending, same.tolist(), strict=True) if not ok]
        if not pending:
            break
    for i in pending:  # float64 repr is exact for every smaller float
        texts[i] = repr(values[i])
    return texts


def format_tsv(values: torch.Tensor) -> str:
    """Format a 0-, 1- or 2-D tensor as tab-separated text (a 1-D tensor is one column).

    Floats use the shortest text that reads back to the same value, so
    ``tsv_to_values(format_tsv(t), t.dtype, t.shape)`` equals ``t`` bit for bit (NaN payloads
    aside); booleans are ``true``/``false``.
    """
    if not isinstance(values, torch.Tensor):
        raise ValueValidationError(f"expected a tensor, got {type(values).__name__}")
    kind = _kind(values.dtype)
    if values.dim() > 2:
        raise ValueValidationError(f"only 0-, 1- or 2-D tensors can be copied as text, got {values.dim()}-D")
    t = values.detach().to("cpu")
    t = t.reshape(1, 1) if t.dim() == 0 else t.reshape(-1, 1) if t.dim() == 1 else t
    flat = t.reshape(-1)
    if kind == "float":
        cells = _shortest_float_text(flat)
    elif kind == "bool":
        cells = ["true" if v else "false" for v in flat.tolist()]
    else:
        cells = [str(v) for v in flat.tolist()]
    cols = t.shape[1]
    return "\n".join("\t".join(cells[r * cols : (r + 1) * cols]) for r in range(t.shape[0]))
