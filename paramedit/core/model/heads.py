"""Attention heads as regions: which blocks of a projection's weight belong to head h.

A projection's output (or, for the output projection, its input) dimension is a concatenation of
heads, each ``head_dim`` wide, and for fused q/k/v (GPT-2's ``c_attn``, PyTorch's
``in_proj_weight``) of the q, k and v parts one after the other. The counts come from the model:
a Hugging Face config (``num_attention_heads``, ``num_key_value_heads`` for grouped-query
attention, ``head_dim``), an ``nn.MultiheadAttention``'s own ``num_heads``, or a count the user
types. A head is then a list of regions of the tensor itself, so an edit through them lands in
place, and :meth:`HeadLayout.view` shows the same storage with the heads as their own axis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from paramedit.core.errors import EditError

__all__ = ["HeadLayout", "head_layout"]


@dataclass(frozen=True)
class HeadLayout:
    """How dimension ``dim`` of a tensor of ``shape`` splits into parts (q, k, v) x heads x head_dim."""

    name: str
    shape: tuple[int, ...]
    dim: int
    parts: tuple[str, ...]  # ("q", "k", "v"), ("q",), ("o",) ...
    heads: tuple[int, ...]  # heads of each part (k and v have fewer with grouped-query attention)
    head_dim: int
    source: str  # where the counts came from, in words

    @property
    def num_heads(self) -> int:
        return max(self.heads)

    def _start(self, part: str) -> int:
        i = self.parts.index(part)
        return sum(h * self.head_dim for h in self.heads[:i])

    def span(self, head: int, part: str) -> tuple[int, int]:
        """Where head ``head`` of ``part`` lies along :attr:`dim` (start, stop)."""
        self.regions(head, part)  # the same checks
        start = self._start(part) + head * self.head_dim
        return start, start + self.head_dim

    def regions(self, head: int, part: str | None = None) -> list[str]:
        """The region strings of head ``head`` (every part, or one), on the tensor itself."""
        parts = self.parts if part is None else (part,)
        out = []
        for p in parts:
            if p not in self.parts:
                raise EditError(f"{self.name} has no part {p!r}; it has {', '.join(self.parts)}")
            count = self.heads[self.parts.index(p)]
            if not 0 <= head < count:
                raise EditError(f"{self.name} has {count} {p} head(s): head {head} is out of range")
            start = self._start(p) + head * self.head_dim
            index = [":"] * len(self.shape)
            index[self.dim] = f"{start}:{start + self.head_dim}"
            out.append("[" + ", ".join(index) + "]")
        return out

    def view(self, tensor: torch.Tensor) -> torch.Tensor:
        """The tensor with its head dimension split into (parts, heads, head_dim): same storage.
        Only where every part has the same number of heads."""
        if len(set(self.heads)) != 1:
            raise EditError(f"{self.name}'s parts have different head counts ({self.heads}); "
                            "pick a part's heads with regions() instead")
        return tensor.unflatten(self.dim, (len(self.parts), self.heads[0], self.head_dim))

    def axis_names(self) -> list[str]:
        names = [f"dim {i}" for i in range(len(self.shape))]
        names[self.dim:self.dim + 1] = (["head", "head_dim"] if self.parts == ("head",)
                                        else ["/".join(self.parts), "head", "head_dim"])
        return names

    def part_label(self, part: str | None) -> str:
        """"k head" for a part's heads, "head" where the tensor has no parts, "" for all parts."""
        return "" if part is None else "head" if part == "head" else f"{part} head"


def _config_counts(model: nn.Module | None) -> tuple[int, int, int | None] | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    if not isinstance(heads, int) or heads < 1:
        return None
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None)
    return heads, kv, head_dim if isinstance(head_dim, int) else None


def _owner(model: nn.Module | None, name: str) -> nn.Module | None:
    if model is None:
        return None
    path = name.rpartition(".")[0]
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        return None


def _layout(name, shape, dim, parts, heads, head_dim, source) -> HeadLayout:
    total = shape[dim]
    if head_dim is None:
        head_dim, rem = divmod(total, sum(heads))
        if rem or head_dim == 0:
            raise EditError(f"{name}'s dimension {dim} ({total}) does not split into {sum(heads)} heads")
    if sum(heads) * head_dim != total:
        raise EditError(f"{name}'s dimension {dim} is {total}, not {' + '.join(map(str, heads))} heads x "
                        f"{head_dim} ({sum(heads) * head_dim}): the head counts do not fit it")
    return HeadLayout(name, tuple(shape), dim, tuple(parts), tuple(heads), head_dim, source)


def head_layout(model: nn.Module | None, name: str, shape: tuple[int, ...], *,
                heads: int | None = None, parts: int = 1) -> HeadLayout:
    """The head layout of tensor ``name`` (of ``shape``): from the model when it can tell, else
    from ``heads`` (and ``parts``: 3 for a fused q/k/v) the user gives."""
    owner = _owner(model, name)
    leaf = name.rpartition(".")[2]
    if isinstance(owner, nn.MultiheadAttention) and leaf in ("in_proj_weight", "in_proj_bias"):
        n = owner.num_heads
        return _layout(name, shape, 0, ("q", "k", "v"), (n, n, n), None, "the module's num_heads")
    # "self_attn.out_proj.weight": the module that holds out_proj is the attention.
    attention = _owner(model, name.rpartition(".")[0]) if name.endswith("out_proj.weight") else None
    if isinstance(attention, nn.MultiheadAttention):
        n = attention.num_heads
        return _layout(name, shape, 1, ("o",), (n,), None, "the attention module's num_heads")
    counts = _config_counts(model)
    if counts is not None and heads is None:
        n, kv, head_dim = counts
        src = f"the model's config ({n} heads" + (f", {kv} key/value heads" if kv != n else "") + ")"
        conv1d = type(owner).__name__ == "Conv1D"  # GPT-2 stores weights as (in, out)
        if re.search(r"(c_attn|qkv|query_key_value)\.(weight|bias)$", name):
            dim = (1 if conv1d else 0) if leaf == "weight" else 0
            return _layout(name, shape, dim, ("q", "k", "v"), (n, kv, kv), head_dim, src)
        for part, pattern, count in (("q", r"(q_proj|query|\.q)\.(weight|bias)$", n),
                                     ("k", r"(k_proj|key|\.k)\.(weight|bias)$", kv),
                                     ("v", r"(v_proj|value|\.v)\.(weight|bias)$", kv)):
            if re.search(pattern, name):
                return _layout(name, shape, 0, (part,), (count,), head_dim, src)
        if re.search(r"(o_proj|attn\.c_proj|attention\.output\.dense|out_proj|\.o)\.weight$", name) and len(shape) == 2:
            dim = 0 if conv1d else 1
            return _layout(name, shape, dim, ("o",), (n,), head_dim, src)
    if heads is None:
        raise EditError(f"cannot tell how {name} splits into heads (no config with num_attention_heads, and not an "
                        "attention projection paramedit knows): give the number of heads")
    if heads < 1 or parts < 1:
        raise EditError("the number of heads and of parts must be at least 1")
    names = ("q", "k", "v") if parts == 3 else tuple(f"part{i}" for i in range(parts)) if parts > 1 else ("head",)
    fits = [d for d in range(len(shape)) if shape[d] % (heads * parts) == 0 and shape[d] >= heads * parts]
    if not fits:
        what = f"{heads} heads" + (f" x {parts} parts" if parts > 1 else "")
        raise EditError(f"no dimension of {name} ({' x '.join(map(str, shape)) or 'a scalar'}) splits into {what}")
    dim = fits[0]
    return _layout(name, shape, dim, names, (heads,) * parts, None, f"{heads} heads as given")
