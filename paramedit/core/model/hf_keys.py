"""transformers' own renaming of checkpoint keys, for matching a folder's tensors to the model.

transformers 5 renames some checkpoint keys as it loads (a ViT's
``vit.encoder.layer.0.attention.attention.query.weight`` is the model's
``vit.layers.0.attention.q_proj.weight``) and ``save_pretrained`` writes them back in the old
layout. Matching by name alone would call every renamed tensor missing. This asks transformers
for the model's own rules (``get_model_conversion_mapping``); a pure renaming maps one file
tensor to one model tensor, so the file's (memory-mapped) tensor is attached as it is and a save
writes it back under the file's name. Keys that transformers *converts* (fuses several file
tensors into one, as Mixtral's experts) are returned apart: they are not one-to-one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["TransformersKeys", "converted_tensors", "file_layout", "transformers_keys"]


@dataclass
class TransformersKeys:
    """model key -> checkpoint key for what transformers renames, and the keys it converts."""

    renamed: dict[str, str] = field(default_factory=dict)
    converted: list[str] = field(default_factory=list)  # checkpoint keys fused by a converter
    targets: dict[str, list[str]] = field(default_factory=dict)  # model key -> the checkpoint keys fused into it


def _is_pretrained(model: nn.Module) -> bool:
    transformers = sys.modules.get("transformers")
    if transformers is None:
        return False
    try:
        return isinstance(model, transformers.PreTrainedModel)
    except Exception:  # pragma: no cover - a broken transformers install
        return False


def transformers_keys(model: nn.Module, model_keys: Iterable[str], ckpt_keys: Iterable[str]) -> TransformersKeys | None:
    """transformers' renaming of ``ckpt_keys`` onto ``model_keys``, or None when the model is not a
    transformers model or transformers has no rules for it."""
    if not _is_pretrained(model):
        return None
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

        transforms = get_model_conversion_mapping(model)
    except Exception:  # an older transformers (no conversions), or one that changed its internals
        return None
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    if not renamings and not converters:
        return None
    wanted = set(model_keys)
    meta = dict.fromkeys(wanted, True)  # rename_source_key only asks whether a name exists
    found = TransformersKeys()
    prefix = getattr(model, "base_model_prefix", None) or None
    for key in ckpt_keys:
        try:
            renamed, pattern = rename_source_key(key, renamings, converters, prefix, meta)
        except Exception:
            continue
        if pattern is not None:
            found.converted.append(key)
            found.targets.setdefault(renamed, []).append(key)
        elif renamed != key and renamed in wanted and renamed not in found.renamed:
            found.renamed[renamed] = key
    return found if found.renamed or found.converted else None


def _transforms(model: nn.Module):
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, WeightRenaming

    transforms = get_model_conversion_mapping(model)
    return ([t for t in transforms if isinstance(t, WeightRenaming)],
            [t for t in transforms if isinstance(t, WeightConverter)])


def converted_tensors(model: nn.Module, tensors: Mapping[str, torch.Tensor], keys: Iterable[str]) -> dict[str, torch.Tensor]:
    """The model's tensors that transformers builds from several of the checkpoint's ``keys`` (a
    fused ``gate_up_proj`` from each expert's ``w1``/``w3``), converted the way it loads them.
    They are new tensors: a conversion copies."""
    import copy

    from transformers.core_model_loading import rename_source_key

    renamings, converters = _transforms(model)
    by_pattern = {p: c for c in converters for p in c.source_patterns}
    meta = dict.fromkeys(model.state_dict(keep_vars=True), True)
    prefix = getattr(model, "base_model_prefix", None) or None
    pending: dict[str, object] = {}
    for key in keys:
        renamed, pattern = rename_source_key(key, renamings, converters, prefix, meta)
        if pattern is None:
            continue
        converter = pending.setdefault(renamed, copy.deepcopy(by_pattern[pattern]))
        converter.add_tensor(renamed, key, pattern, tensors[key])
    out: dict[str, torch.Tensor] = {}
    for name, converter in pending.items():
        for target, value in converter.convert(name, model=model, config=model.config).items():
            out[target] = (value[0] if isinstance(value, list) else value).contiguous()
    return out


def file_layout(model: nn.Module, live: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint tensors transformers would write for the model's ``live`` tensors (its
    ``save_pretrained`` reverse conversion): a fused ``gate_up_proj`` back into each expert's
    ``w1``/``w3``."""
    from transformers.core_model_loading import revert_weight_conversion

    with torch.no_grad():
        return dict(revert_weight_conversion(model, {k: v.detach() for k, v in live.items()}))
