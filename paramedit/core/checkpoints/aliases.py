"""Tied tensors: names that share one tensor, found from storage or declared in file metadata."""

from __future__ import annotations

import json
from collections.abc import Mapping

import torch

from paramedit.core.checkpoints.containers import classify_tensor

__all__ = [
    "ALIASES_METADATA_KEY",
    "apply_declared_aliases",
    "declared_aliases",
    "find_shared_aliases",
    "merge_aliases",
]

# paramedit's own safetensors metadata key: JSON {alias: canonical}.
ALIASES_METADATA_KEY = "paramedit.aliases"


def find_shared_aliases(tensors: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """Map each name whose tensor is the same view of the same storage as an earlier name to that name.

    Same storage, offset, shape, stride and dtype: editing one edits the other (tied weights).
    The canonical name is the first in ``tensors``' order. Empty tensors are never aliases.
    """
    first: dict[tuple[object, ...], str] = {}
    aliases: dict[str, str] = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor) or classify_tensor(t) is not None or t.numel() == 0:
            continue
        try:
            storage = t.untyped_storage()
            ptr, nbytes = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):
            continue
        if ptr == 0 or nbytes == 0:
            continue
        key = (t.device, ptr, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if key in first:
            aliases[name] = first[key]
        else:
            first[key] = name
    return aliases


def declared_aliases(metadata: Mapping[str, str], names: set[str], notes: list[str]) -> dict[str, str]:
    """Aliases a file's metadata declares: paramedit's own key, and the {dropped: kept} entries
    that ``safetensors.torch.save_model`` and ``huggingface_hub`` write for tied tensors."""
    declared: dict[str, str] = {}
    raw = metadata.get(ALIASES_METADATA_KEY)
    if raw is not None:
        try:
            value = json.loads(raw)
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ValueError("not an object of names")
            declared.update({str(k): v for k, v in value.items()})
        except ValueError as exc:
            notes.append(f"ignored the '{ALIASES_METADATA_KEY}' metadata: {exc}")
    for key, value in metadata.items():
        if key not in names and key not in declared and not key.startswith("paramedit.") and value in names:
            declared[key] = value
    return declared


def apply_declared_aliases(
    tensors: dict[str, torch.Tensor], declared: dict[str, str], notes: list[str]
) -> dict[str, str]:
    """Make each declared alias name the very tensor of its canonical name; returns those applied.

    An alias missing from the file is added (after the file's names). One present with different
    values stays a separate tensor, with a note.
    """
    applied: dict[str, str] = {}
    restored: list[str] = []
    for alias, canonical in declared.items():
        for _ in range(len(declared)):  # follow chains a -> b -> c
            if canonical in declared and canonical != alias:
                canonical = declared[canonical]
        if canonical not in tensors or alias == canonical:
            notes.append(f"metadata lists {alias} as an alias of {canonical}, which is not a loaded tensor; ignored")
            continue
        target = tensors[canonical]
        if alias in tensors:
            current = tensors[alias]
            if current.shape != target.shape or current.dtype != target.dtype or not torch.equal(current, target):
                notes.append(f"metadata lists {alias} as an alias of {canonical}, but their values differ; kept both")
                continue
        else:
            restored.append(alias)
        tensors[alias] = target
        applied[alias] = canonical
    if restored:
        notes.append(f"restored {len(restored)} tied name(s) from the file's metadata: {', '.join(restored[:5])}")
    return applied


def merge_aliases(shared: dict[str, str], declared: Mapping[str, str]) -> dict[str, str]:
    """Combine storage-detected aliases with declared ones; a declaration decides the canonical name."""
    aliases = dict(shared)
    for alias, canonical in declared.items():
        head = aliases.get(alias, alias)
        group = {n for n, c in aliases.items() if c == head} | {head}
        for member in group - {canonical}:
            aliases[member] = canonical
        aliases.pop(canonical, None)
    return aliases
