"""How the tensor table writes one number: always the value the dtype stores, in a chosen style."""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
import torch


class NumberFormat(Enum):
    """Display styles offered in View > Number format."""

    STORED = "Stored value (exact for the dtype)"
    GENERAL = "6 significant digits"
    FIXED = "Fixed decimals"
    SCIENTIFIC = "Scientific"



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
