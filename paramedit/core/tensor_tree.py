"""The named tensors of a session: parameters and buffers by module path, tied ones once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

READ_ONLY_DTYPES = {
    torch.complex32: "complex tensors are read-only in paramedit",
    torch.complex64: "complex tensors are read-only in paramedit",
    torch.complex128: "complex tensors are read-only in paramedit",
}


@dataclass
class TensorInfo:
    """What the tree shows about one named tensor (tied aliases folded into one entry)."""

    name: str
    kind: str  # "parameter" | "buffer" | "tensor"
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    requires_grad: bool
    aliases: list[str] = field(default_factory=list)
    read_only: str | None = None  # reason, when the tensor cannot be edited

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def frozen(self) -> bool:
        return self.kind == "parameter" and not self.requires_grad

    @property
    def module_path(self) -> str:
        return self.name.rpartition(".")[0]

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "requires_grad": self.requires_grad,
            "numel": self.numel,
            "aliases": list(self.aliases),
        }


def read_only_reason(tensor: torch.Tensor) -> str | None:
    """Why a tensor cannot be edited in place, or None when it can."""
    if tensor.dtype in READ_ONLY_DTYPES:
        return READ_ONLY_DTYPES[tensor.dtype]
    if tensor.is_sparse or tensor.layout != torch.strided:
        return f"{tensor.layout} tensors are read-only in paramedit"
    if tensor.is_quantized:
        return "quantized tensors are read-only in paramedit"
    if tensor.device.type == "meta":
        return "this tensor has no data (meta device)"
    return None


def _info(name: str, tensor: torch.Tensor, kind: str, aliases: list[str]) -> TensorInfo:
    return TensorInfo(
        name=name,
        kind=kind,
        shape=tuple(tensor.shape),
        dtype=tensor.dtype,
        device=tensor.device,
        requires_grad=bool(tensor.requires_grad) if kind == "parameter" else False,
        aliases=aliases,
        read_only=read_only_reason(tensor),
    )


def model_tensors(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, str]]:
    """All named parameters and buffers of ``model``.

    Returns (canonical name -> tensor, canonical name -> kind, alias -> canonical name). Tied
    tensors (the same object registered under several names) appear once, under the first name
    ``named_parameters`` yields, which is how ``state_dict`` orders them too.
    """
    tensors: dict[str, torch.Tensor] = {}
    kinds: dict[str, str] = {}
    aliases: dict[str, str] = {}
    seen: dict[int, str] = {}
    named: Iterable[tuple[str, torch.Tensor, str]] = [
        *((n, p, "parameter") for n, p in model.named_parameters(remove_duplicate=False)),
        *((n, b, "buffer") for n, b in model.named_buffers(remove_duplicate=False)),
    ]
    for name, tensor, kind in named:
        if tensor is None:
            continue
        key = id(tensor)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = tensor
        kinds[name] = kind
    return tensors, kinds, aliases


def build_infos(
    tensors: Mapping[str, torch.Tensor], kinds: Mapping[str, str], aliases: Mapping[str, str]
) -> dict[str, TensorInfo]:
    """One TensorInfo per canonical name, with its aliases listed."""
    by_canonical: dict[str, list[str]] = {}
    for alias, canonical in aliases.items():
        by_canonical.setdefault(canonical, []).append(alias)
    return {
        name: _info(name, tensor, kinds.get(name, "tensor"), by_canonical.get(name, []))
        for name, tensor in tensors.items()
    }


@dataclass(frozen=True)
class TensorStats:
    """Summary statistics of one tensor (floating stats are computed in float64)."""

    min: float
    max: float
    mean: float
    std: float
    norm: float
    nan: int
    inf: int
    zeros: int
    numel: int

    def as_json(self) -> dict:
        return dict(self.__dict__)


def tensor_stats(tensor: torch.Tensor) -> TensorStats:
    """min, max, mean, std, norm, NaN/Inf count and zeros of a tensor, NaN-aware.

    min/max/mean/std/norm are over the finite values; a tensor with none gives NaN for them.
    """
    t = tensor.detach()
    numel = t.numel()
    if t.is_quantized:
        t = t.dequantize()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    if t.is_complex():
        t = t.abs()
    if t.is_floating_point() and t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = t.float()  # float8 kinds: torch has no isnan/isinf/comparisons for them
    zeros = int((t == 0).sum())
    if t.is_floating_point():
        nan = int(torch.isnan(t).sum())
        inf = int(torch.isinf(t).sum())
        finite = t[torch.isfinite(t)] if (nan or inf) else t.reshape(-1)
    else:
        nan = inf = 0
        finite = t.reshape(-1)
    nan_f = float("nan")
    if finite.numel() == 0:
        return TensorStats(nan_f, nan_f, nan_f, nan_f, nan_f, nan, inf, zeros, numel)
    f = finite.to(torch.float64)
    std = float(f.std()) if f.numel() > 1 else 0.0
    return TensorStats(
        min=float(f.min()),
        max=float(f.max()),
        mean=float(f.mean()),
        std=std,
        norm=float(torch.linalg.vector_norm(f)),
        nan=nan,
        inf=inf,
        zeros=zeros,
        numel=numel,
    )


def padding_rows(model: nn.Module) -> dict[str, int]:
    """Embedding weight name -> its ``padding_idx`` (a row that is zero by design)."""
    rows = {}
    for name, module in model.named_modules():
        idx = getattr(module, "padding_idx", None)
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.Embedding) and isinstance(idx, int) and isinstance(weight, torch.Tensor):
            rows[f"{name}.weight" if name else "weight"] = idx % weight.shape[0]
    return rows
