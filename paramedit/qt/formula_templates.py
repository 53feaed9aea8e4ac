"""Formula templates that teach the expression language, written for the selection's shape.

Each is one expression over ``x`` with a one-line explanation; the numbers in it (how many
columns, which row) are taken from the region the formula will run on, so it runs as it is and
shows how to adapt it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FormulaTemplate", "formula_templates"]


@dataclass(frozen=True)
class FormulaTemplate:
    title: str
    expr: str
    explanation: str


def _column_blocks(width: int) -> tuple[int, int, int]:
    """(block width, period, the block kept in each period) that divide ``width`` sensibly:
    768 columns -> blocks of 64, every 4th from block 2 (head 2 of 4 in each of q, k and v)."""
    block = 64 if width % 64 == 0 and width >= 128 else max(1, width // 8)
    blocks = max(1, width // block)
    period = 4 if blocks >= 4 else blocks
    return block, period, min(2, period - 1)


def formula_templates(shape: tuple[int, ...]) -> list[FormulaTemplate]:
    """Templates for a region of ``shape`` (its last dimension is the columns)."""
    width = shape[-1] if shape else 1
    rows = shape[-2] if len(shape) >= 2 else 1
    block, period, which = _column_blocks(width)
    two_d = len(shape) >= 2
    row = min(3, (rows if two_d else width) - 1)
    scale_row = (f"x * where(reshape(arange({rows}), ({rows}, 1)) == {row}, 0.5, 1)" if two_d
                 else f"x * where(arange({width}) == {row}, 0.5, 1)")
    nth = {1: "", 2: "2nd ", 3: "3rd "}.get(period, f"{period}th ")
    return [
        FormulaTemplate(
            f"Zero every {nth}block of {block} columns, from block {which}",
            f"where((arange({width}) // {block}) % {period} == {which}, 0, x)",
            f"arange({width}) numbers the columns, // {block} gives each its block, % {period} == {which} picks "
            f"blocks {which}, {which + period}, …; where() writes 0 there and keeps x elsewhere (a head of q, k "
            "and v in a fused attention weight)"),
        FormulaTemplate(
            "Keep the top 10% by magnitude",
            "where(abs(x) >= quantile(abs(x), 0.9), x, 0)",
            "quantile(abs(x), 0.9) is the magnitude 90% of the values stay under; where() keeps the values at "
            "or above it and zeros the rest (magnitude pruning); 0.99 keeps the top 1%"),
        FormulaTemplate(
            f"Scale {'row' if two_d else 'element'} {row} by 0.5",
            scale_row,
            ("arange numbers the rows (reshape makes it a column, so it lines up with x's rows); where() picks "
             "0.5 for one row and 1 for the others, and x is multiplied by it") if two_d else
            "arange numbers the elements; where() picks 0.5 for one and 1 for the others, and x is multiplied by it"),
        FormulaTemplate(
            "Add noise",
            "x + randn_like(x) * 0.01",
            "adds Gaussian noise of standard deviation 0.01 to every value; the seed below makes it repeatable"),
    ]
