"""Finding the state dict inside whatever object a checkpoint holds, and cleaning up its names.

Training code saves state dicts in many wrappings: ``{"state_dict": ...}`` (Lightning),
``{"model": ..., "ema": ..., "optimizer": ..., "epoch": 3}``, ``{"model": {"module": ...}}``, a
whole ``nn.Module``, keys prefixed ``module.`` (DataParallel/DDP) or ``_orig_mod.``
(torch.compile). This module picks the tensor dict the user most likely means and says what it did.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from paramedit.core.errors import CheckpointError

__all__ = [
    "CONTAINER_KEYS",
    "MAX_CONTAINER_DEPTH",
    "SelectedContainer",
    "classify_tensor",
    "common_wrapper_prefix",
    "select_container",
]

# Keys that usually hold the model's weights, most likely first.
CONTAINER_KEYS = (
    "state_dict", "model_state_dict", "model", "module", "net", "network", "params", "weights",
    "ema", "ema_model", "model_ema", "state_dict_ema", "params_ema", "generator", "g_ema",
    "student", "teacher", "encoder", "backbone",
)  # fmt: skip
MAX_CONTAINER_DEPTH = 3
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Training state that can hold tensor dicts (optimizer moments, ...) but never model weights.
_NOT_WEIGHTS = re.compile(r"optim|sched|scaler|rng|callback|loops|hyper_param|hparam", re.IGNORECASE)
_ROOT = "the top level"


@dataclass
class SelectedContainer:
    """The chosen tensor mapping, where it was, and what else was there."""

    key: str | None
    entries: Mapping[object, object]
    other_containers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    module_type: str | None = None
    #: The keys from the file's top level down to ``entries`` (``()``: the top level itself).
    path: tuple[str, ...] = ()


def _tensor_count(value: object) -> int:
    if isinstance(value, nn.Module):
        return sum(1 for _ in value.state_dict())
    if isinstance(value, Mapping):
        return sum(1 for k, v in value.items() if isinstance(k, str) and isinstance(v, torch.Tensor))
    return 0


def _walk(value: Mapping[object, object], path: tuple[str, ...], out: list[tuple[tuple[str, ...], object]]) -> None:
    for key, child in value.items():
        if not isinstance(key, str) or _NOT_WEIGHTS.search(key):
            continue
        child_path = (*path, key)
        if isinstance(child, nn.Module):
            out.append((child_path, child))
        elif isinstance(child, Mapping):
            if _tensor_count(child):
                out.append((child_path, child))
            if len(child_path) < MAX_CONTAINER_DEPTH:
                _walk(child, child_path, out)


def _rank(path: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(CONTAINER_KEYS.index(k) if k in CONTAINER_KEYS else len(CONTAINER_KEYS) for k in path)


def _resolve_key(root: object, dotted: str) -> tuple[object, tuple[str, ...]] | None:
    """Follow a dotted key to (value, path of keys); a key may itself contain dots, so the
    longest match is tried first."""
    if dotted == "":
        return root, ()
    if not isinstance(root, Mapping):
        return None
    if dotted in root:
        return root[dotted], (dotted,)
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in root:
            found = _resolve_key(root[head], ".".join(parts[cut:]))
            if found is not None:
                return found[0], (head, *found[1])
    return None


def _as_entries(value: object) -> tuple[Mapping[object, object], str | None]:
    if isinstance(value, nn.Module):
        return value.state_dict(), f"{type(value).__module__}.{type(value).__qualname__}"
    assert isinstance(value, Mapping)
    return value, None


def _describe(path: tuple[str, ...]) -> str:
    return ".".join(path)


def select_container(obj: object, *, source: Path, container_key: str | None = None) -> SelectedContainer:
    """Choose the tensor mapping in ``obj`` (what ``torch.load`` returned).

    A flat mapping of tensors is the state dict. Otherwise the usual keys (``CONTAINER_KEYS``) are
    searched, up to ``MAX_CONTAINER_DEPTH`` levels down; ``container_key`` (dotted, ``""`` for the
    top level) picks one explicitly. An ``nn.Module`` (only in trusted pickles) gives its
    ``state_dict()``.
    """
    if isinstance(obj, nn.Module) and container_key in (None, ""):
        entries, module_type = _as_entries(obj)
        return SelectedContainer(
            key=None, entries=entries, module_type=module_type,
            notes=[f"the file holds a whole model object ({module_type}); used its state_dict()"],
        )  # fmt: skip
    if isinstance(obj, torch.Tensor):
        raise CheckpointError(f"{source} holds a single tensor, not a dict of named tensors")
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source} holds a {type(obj).__name__}, not a dict of named tensors or a model; nothing to edit"
        )
    found: list[tuple[tuple[str, ...], object]] = []
    _walk(obj, (), found)
    names = [_describe(p) for p, _ in found]

    if container_key is not None:
        resolved = _resolve_key(obj, container_key)
        chosen, chosen_path = resolved if resolved is not None else (None, ())
        if chosen is None or not _tensor_count(chosen):
            where = ", ".join(names) or "none"
            raise CheckpointError(
                f"{source} has no tensor container '{container_key}'; containers holding tensors: "
                f"{where}{' (and the top level)' if _tensor_count(obj) else ''}"
            )
        entries, module_type = _as_entries(chosen)
        key = container_key or None
        others = [n for n in names if n != container_key]
        notes = [f"used key '{container_key}' as asked" if key else "used the top level as asked"]
        return SelectedContainer(key, entries, others, notes, module_type, chosen_path)

    root_count = _tensor_count(obj)
    if not found:
        if not root_count:
            keys = ", ".join(str(k) for k in list(obj)[:8]) or "nothing"
            raise CheckpointError(f"no tensors found in {source}; it holds: {keys}. If the tensors are deeper "
                                  "inside, name their container with --key (container_key= in Python), "
                                  "e.g. --key a.b.state_dict")
        return SelectedContainer(key=None, entries=obj)

    order = sorted(range(len(found)), key=lambda i: (_rank(found[i][0]), i))
    best_path, best_value = found[order[0]]
    if root_count and root_count >= _tensor_count(best_value):
        others = [names[i] for i in order]
        note = f"other tensor containers in the file, not used: {', '.join(others)}"
        return SelectedContainer(key=None, entries=obj, other_containers=others, notes=[note])
    key = _describe(best_path)
    entries, module_type = _as_entries(best_value)
    notes = [f"used key '{key}'"]
    if root_count:
        stray = [k for k, v in obj.items() if isinstance(v, torch.Tensor)]
        notes.append(f"ignored {len(stray)} tensor(s) stored directly at {_ROOT}: {', '.join(map(str, stray[:5]))}")
    if module_type:
        notes.append(f"'{key}' is a whole model object ({module_type}); used its state_dict()")
    others = [names[i] for i in order[1:]]
    if others:
        notes.append(f"other tensor containers in the file, not used: {', '.join(others)}")
    rest = [str(k) for k in obj if k != best_path[0]]
    if rest:
        notes.append(f"the file also holds: {', '.join(rest[:10])}{', …' if len(rest) > 10 else ''}")
    return SelectedContainer(key, entries, others, notes, module_type, best_path)


def classify_tensor(t: torch.Tensor) -> str | None:
    """None for a dense tensor that can be edited; otherwise why it cannot."""
    if t.is_nested:
        return "nested tensor: not a dense array"
    if t.layout != torch.strided:
        return f"sparse tensor ({str(t.layout).removeprefix('torch.')}): only dense tensors can be edited"
    if t.is_quantized:
        return f"quantized tensor ({str(t.dtype).removeprefix('torch.')}): its values are integers plus a scale"
    if t.device.type == "meta":
        return "meta tensor: the file records its shape but holds no values"
    if type(t) not in (torch.Tensor, nn.Parameter):
        return f"tensor subclass {type(t).__module__}.{type(t).__qualname__}: not a plain dense tensor"
    return None


def common_wrapper_prefix(names: list[str]) -> str:
    """The run of ``module.`` / ``_orig_mod.`` prefixes that *every* name carries ("" if none)."""
    prefix = ""
    while names:
        for candidate in WRAPPER_PREFIXES:
            full = prefix + candidate
            if all(n.startswith(full) and len(n) > len(full) for n in names):
                prefix = full
                break
        else:
            return prefix
    return prefix
