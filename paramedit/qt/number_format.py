"""How the tensor table writes one number: always the value the dtype stores, in a chosen style."""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
import torch


class NumberFormat(Enum):
    """Display styles offered in View > Number format."""

    COMPACT = "Compact (3 significant digits)"
    STORED = "Stored value (exact for the dtype)"
    GENERAL = "6 significant digits"
    FIXED = "Fixed decimals"
    SCIENTIFIC = "Scientific"


#: The style a table starts in: narrow columns, so many fit (the editor and tooltip give every digit).
DEFAULT_FORMAT = NumberFormat.COMPACT


def compact_text(value: float) -> str:
    """3 significant digits in at most 8 characters for a float32 (``-0.0123``, ``-1.23e-4``, ``1.23e4``)."""
    magnitude = abs(value)
    text = f"{value:.2e}" if 0 < magnitude < 1e-2 else f"{value:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


def format_number(value: float | int | bool, dtype: torch.dtype, style: NumberFormat = NumberFormat.STORED,
                  decimals: int = 4) -> str:
    """Text for one element (``value`` is the element as a Python number, float64 for floats)."""
    if dtype == torch.bool:
        return "true" if value else "false"
    if dtype.is_complex:
        c = complex(value)
        return f"{c.real:.6g}{c.imag:+.6g}j"
    if not dtype.is_floating_point:
        return str(int(value))
    value = float(value)
    special = _special(value)
    if special is not None:
        return special
    if style is NumberFormat.COMPACT:
        return compact_text(value)
    if style is NumberFormat.GENERAL:
        return f"{value:.6g}"
    if style is NumberFormat.FIXED:
        return f"{value:.{decimals}f}"
    if style is NumberFormat.SCIENTIFIC:
        return f"{value:.{decimals}e}"
    if dtype == torch.float32:
        return str(np.float32(value))  # NumPy's shortest text that reads back to the same float32
    # float16/bfloat16/float8 keep so few mantissa bits that "0.1" would hide what they store; the
    # float64 repr of the stored value is its exact, short expansion (0.1 in bfloat16: 0.10009765625).
    return repr(value)


def edit_text(value: float | int | bool, dtype: torch.dtype) -> str:
    """What the cell editor starts with: the stored value, never rounded for display."""
    return format_number(value, dtype, NumberFormat.STORED)


def widest_text(dtype: torch.dtype, style: NumberFormat = DEFAULT_FORMAT, decimals: int = 4) -> str:
    """A text as wide as the widest a column of ``dtype`` in ``style`` usually shows (its width
    sizes the table's columns)."""
    if dtype == torch.bool:
        return "false"
    if dtype.is_complex:
        return "-1.23457-1.23457j"
    if not dtype.is_floating_point:
        return {torch.uint8: "255", torch.int8: "-128", torch.int16: "-32768"}.get(dtype, "-12345678")
    if style is NumberFormat.COMPACT:
        return "-1.23e-10" if dtype == torch.float64 else "-1.23e-4"  # wider than -0.0123 and -1.23e4
    if style is NumberFormat.GENERAL:
        return "-1.23457e-05"
    if style is NumberFormat.FIXED:
        return f"{-1234.0:.{decimals}f}"
    if style is NumberFormat.SCIENTIFIC:
        return f"{-1.0:.{decimals}e}"
    # Stored: the shortest exact text of a typical small weight, e.g. -0.00089557766 in float32.
    return "-1.2345678901234567e-05" if dtype == torch.float64 else "-0.000895577660"
