"""Computing the values an edit will write, before anything is written.

Every value is validated for the target dtype and the region's shape here, so a commit either
writes all its regions or none.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from paramedit.core.checkpoints.formats import LoadedCheckpoint
from paramedit.core.editing.edits import Edit
from paramedit.core.editing.expressions import parse_expression
from paramedit.core.editing.initializers import init_values
from paramedit.core.editing.regions import Region, parse_region
from paramedit.core.editing.values import to_values
from paramedit.core.errors import EditError, ValueValidationError

# A formula may use a few temporaries the size of its region, never an unbounded amount.
FORMULA_BUDGET_FACTOR = 4
FORMULA_MIN_BUDGET = 1 << 16


def formula_variable_dtype(dtype: torch.dtype) -> torch.dtype:
    """``x`` is float64 for floating tensors and int64 for integer ones, so arithmetic is exact."""
    if dtype.is_floating_point:
        return torch.float64
    if dtype == torch.bool:
        return torch.bool
    return torch.int64


def _broadcast(result, region: Region, edit: Edit):
    if not isinstance(result, torch.Tensor) or tuple(result.shape) == region.shape:
        return result
    try:
        return torch.broadcast_to(result, region.shape)
    except RuntimeError:
        raise ValueValidationError(
            f"formula {edit.expr!r} gives shape {list(result.shape)}, which does not fit the region "
            f"{edit.target}{edit.index} of shape {list(region.shape)}"
        ) from None


def compute_edit_values(
    edit: Edit,
    tensor: torch.Tensor,
    region: Region,
    current: Callable[[], torch.Tensor],
    source: Callable[[Edit], tuple[torch.Tensor, str]],
) -> torch.Tensor:
    """The CPU tensor (region shape, target dtype) an edit writes.

    ``current()`` gives the region's values as they will be when this edit runs (staged edits
    before it applied); ``source(edit)`` gives the source tensor of a copy edit and its label.
    """
    dtype = tensor.dtype
    if edit.op == "set":
        return to_values(edit.value, dtype, region.shape)
    if edit.op == "formula":
        expression = parse_expression(edit.expr or "")
        budget = max(FORMULA_BUDGET_FACTOR * region.numel, FORMULA_MIN_BUDGET)
        x = current().to(formula_variable_dtype(dtype))
        generator = torch.Generator(device="cpu")
        generator.manual_seed(0 if edit.seed is None else int(edit.seed))
        result = expression.evaluate(
            {"x": x}, numel_budget=budget, generator=generator, dtype=torch.float64, device="cpu"
        )
        return to_values(_broadcast(result, region, edit), dtype, region.shape)
    if edit.op == "init":
        values = init_values(edit.method or "", region.shape, edit.args, edit.seed)
        return to_values(values, dtype, region.shape)
    if edit.op == "copy":
        src, label = source(edit)
        src_region = parse_region(edit.source_index, tuple(src.shape))
        if src_region.shape != region.shape:
            raise ValueValidationError(
                f"copy source {label}{src_region.text} has shape {list(src_region.shape)}, but the target "
                f"region {edit.target}{region.text} has shape {list(region.shape)}"
            )
        return to_values(src[src_region.index].detach().to("cpu"), dtype, region.shape)
    raise EditError(f"unknown edit op {edit.op!r}")


def source_tensor(checkpoint: LoadedCheckpoint, name: str) -> torch.Tensor:
    """A tensor of a source checkpoint by name or tied alias, with a clear error if absent."""
    canonical = checkpoint.aliases.get(name, name)
    if canonical in checkpoint.tensors:
        return checkpoint.tensors[canonical]
    names = list(checkpoint.tensors)
    close = [n for n in names if n.endswith(name.rpartition(".")[2])][:5]
    hint = f"; similar names: {', '.join(close)}" if close else ""
    raise EditError(f"{str(checkpoint.path)!r} has no tensor named {name!r}{hint}")
