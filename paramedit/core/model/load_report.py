"""Putting checkpoint tensors into a model, and saying exactly what did not fit.

Never a silent ``strict=False``: every missing, unexpected, mismatched or converted key is
reported. A tensor whose shape does not match is left as the model built it; the user can copy
a slice of the checkpoint tensor into it with a ``copy`` edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from paramedit.core.checkpoints.key_matching import match_keys
from paramedit.core.model.check_memory import size_text
from paramedit.core.model.hf_keys import converted_tensors, transformers_keys


@dataclass
class LoadReport:
    """What happened when a checkpoint met a model."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    converted: list[tuple[str, str, str]] = field(default_factory=list)
    tied: list[tuple[str, str]] = field(default_factory=list)  # (alias the file lacked, canonical it is tied to)
    key_map: dict[str, str] = field(default_factory=dict)  # model name -> checkpoint name
    # model name -> the checkpoint names transformers fuses into it (Mixtral's experts): loaded
    # through its conversion (a copy), written back through its reverse conversion.
    converted_from: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    assigned: bool = False  # the model's tensors ARE the checkpoint's (mapped) tensors, not copies

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        """One paragraph a researcher reads first."""
        parts = [f"{len(self.loaded)} tensors loaded"]
        if self.missing:
            parts.append(f"{len(self.missing)} in the model but not the checkpoint: {_few(self.missing)}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} in the checkpoint but not the model: {_few(self.unexpected)}")
        if self.mismatched:
            items = [f"{n} (checkpoint {list(c)}, model {list(m)})" for n, c, m in self.mismatched]
            parts.append(f"{len(self.mismatched)} with different shapes, left as the model built them: {_few(items)}")
        if self.converted:
            items = [f"{n} {a}->{b}" for n, a, b in self.converted]
            parts.append(f"{len(self.converted)} converted to the model's dtype: {_few(items)}")
        return "; ".join(parts) + "."

    def as_json(self) -> dict[str, Any]:
        return {
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "mismatched": [{"name": n, "checkpoint_shape": list(c), "model_shape": list(m)} for n, c, m in self.mismatched],
            "converted": [{"name": n, "from": a, "to": b} for n, a, b in self.converted],
            "tied": [{"name": a, "tied_to": c} for a, c in self.tied],
            "notes": list(self.notes),
        }


def _few(names: list[str], n: int = 6) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", … ({len(names) - n} more)" if len(names) > n else "")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def model_key_map(model: nn.Module, model_keys: list[str], ckpt_keys: list[str]) -> tuple[dict[str, str], str | None]:
    """model name -> checkpoint name: by name (one wrapping prefix either way, see ``match_keys``),
    plus the renamings transformers itself applies when it loads the model's checkpoints."""
    mapping, note = match_keys(model_keys, ckpt_keys)
    hf = transformers_keys(model, model_keys, ckpt_keys)
    if hf is not None and hf.renamed:
        taken = set(mapping.values())
        extra = {m: c for m, c in hf.renamed.items() if m not in mapping and c not in taken}
        if extra:
            mapping = {**mapping, **extra}
            note = "; ".join(filter(None, [note, f"matched {len(extra)} renamed key(s) the way transformers "
                                                  f"loads {type(model).__name__} (e.g. {next(iter(extra.values()))} "
                                                  f"is {next(iter(extra))})"]))
    return mapping, note


def fused_targets(model: nn.Module, model_keys: list[str], ckpt_keys: list[str]) -> dict[str, list[str]]:
    """model name -> checkpoint names transformers converts into it (several into one)."""
    hf = transformers_keys(model, model_keys, ckpt_keys)
    wanted = set(model_keys)
    return {m: keys for m, keys in hf.targets.items() if m in wanted} if hf is not None else {}


def _load_fused(model: nn.Module, state: Mapping[str, torch.Tensor], tensors: Mapping[str, torch.Tensor],
                fused: dict[str, list[str]], report: LoadReport) -> dict[str, torch.Tensor]:
    """The model tensors transformers builds from several checkpoint tensors, converted its way."""
    if not fused:
        return {}
    values = converted_tensors(model, tensors, [k for keys in fused.values() for k in keys])
    out = {}
    for name, keys in fused.items():
        value = values.get(name)
        if value is None or tuple(value.shape) != tuple(state[name].shape):
            continue
        if value.dtype != state[name].dtype:
            value = value.to(state[name].dtype)
        out[name] = value
        report.converted_from[name] = list(keys)
    if out:
        nbytes = sum(v.numel() * v.element_size() for v in out.values())
        report.notes.append(f"built {len(out)} tensor(s) from {sum(len(k) for k in report.converted_from.values())} "
                            f"of the checkpoint's the way transformers loads {type(model).__name__} (e.g. "
                            f"{next(iter(out))}): a copy of {size_text(nbytes)}; saving writes them back "
                            "in the checkpoint's layout")
    return out


def load_into_model(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    aliases: Mapping[str, str],
) -> LoadReport:
    """Copy checkpoint tensors into the model's own parameters and buffers, in place.

    ``aliases`` maps each tied model name to its canonical name; a tied name the file lacks is
    not "missing" when its canonical name was loaded (``save_pretrained`` drops tied weights).
    """
    report = LoadReport()
    state = model.state_dict(keep_vars=True)
    mapping, note = model_key_map(model, list(state), list(tensors))
    if note:
        report.notes.append(note)
    fused = {m: k for m, k in fused_targets(model, list(state), list(tensors)).items() if m not in mapping}
    used_ckpt: set[str] = set()
    loaded_objects: set[int] = set()
    with torch.no_grad():
        for name, value in _load_fused(model, state, tensors, fused, report).items():
            state[name].copy_(value)
            loaded_objects.add(id(state[name]))
            report.loaded.append(name)
            used_ckpt.update(report.converted_from[name])
        for name, target in state.items():
            ckpt_name = mapping.get(name)
            if ckpt_name is None:
                continue
            source = tensors[ckpt_name]
            used_ckpt.add(ckpt_name)
            report.key_map[name] = ckpt_name
            if tuple(source.shape) != tuple(target.shape):
                report.mismatched.append((name, tuple(source.shape), tuple(target.shape)))
                continue
            if id(target) in loaded_objects:
                continue  # a tied alias: the shared tensor is already loaded
            if source.dtype != target.dtype:
                report.converted.append((name, _dtype_name(source.dtype), _dtype_name(target.dtype)))
            target.copy_(source)
            loaded_objects.add(id(target))
            report.loaded.append(name)
        for name, target in state.items():
            if name in mapping or name in report.converted_from:
                continue
            canonical = aliases.get(name)
            if id(target) in loaded_objects:
                report.tied.append((name, canonical or "a loaded tensor"))
            else:
                report.missing.append(name)
    report.unexpected = [k for k in tensors if k not in used_ckpt]
    return report


def _set_tensor(model: nn.Module, name: str, value: torch.Tensor) -> None:
    path, _, attr = name.rpartition(".")
    module = model.get_submodule(path) if path else model
    if attr in module._parameters:
        module._parameters[attr] = value  # type: ignore[assignment]
    else:
        module._buffers[attr] = value


def _meta_attributes(model: nn.Module) -> list[str]:
    """Tensors a module keeps in plain attributes (not parameters or buffers) on the meta device.

    Loading cannot reach them, so they would stay without values, and torch computes
    ``cpu_tensor * meta_tensor`` without complaint, from uninitialised memory.
    """
    found = []
    for mod_name, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr in ("_parameters", "_buffers", "_modules"):
                continue
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, torch.Tensor) and v.is_meta for v in items):
                found.append(f"{mod_name}.{attr}" if mod_name else attr)
    return found


def meta_build_problem(model: nn.Module, tensors: Mapping[str, torch.Tensor], aliases: Mapping[str, str]) -> str | None:
    """Why checkpoint tensors cannot simply be attached to this model built with empty
    parameters (None: they can). The reason is a sentence for the load report's note."""
    state = model.state_dict(keep_vars=True)
    persistent = set(state)
    left = [n for n, b in model.named_buffers(remove_duplicate=False) if n not in persistent and b.is_meta]
    if left:
        return f"{len(left)} non-persistent buffer(s) are computed from parameters ({_few(left, 3)})"
    attributes = _meta_attributes(model)
    if attributes:
        return f"the model keeps tensors computed from its parameters in plain attributes ({_few(attributes, 3)})"
    mapping, _ = model_key_map(model, list(state), list(tensors))
    fused = fused_targets(model, list(state), list(tensors))
    missing = [n for n in state if n not in aliases and n not in mapping and n not in fused]
    if missing:
        return f"{len(missing)} tensor(s) of the model are not in the checkpoint"
    other = [n for n in state if n not in aliases and n in mapping
             and tuple(tensors[mapping[n]].shape) != tuple(state[n].shape)]
    if other:
        return f"{len(other)} tensor(s) have other shapes in the checkpoint"
    return None


def assign_into_meta_model(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    aliases: Mapping[str, str],
) -> LoadReport | None:
    """Attach checkpoint tensors to a model built with empty (``meta``) parameters, without copying.

    Returns None (and changes nothing) when :func:`meta_build_problem` finds a reason it cannot:
    the caller then builds the model for real and copies.
    """
    if meta_build_problem(model, tensors, aliases) is not None:
        return None
    state = model.state_dict(keep_vars=True)
    mapping, note = model_key_map(model, list(state), list(tensors))
    report = LoadReport(assigned=True)
    if note:
        report.notes.append(note)
    canonical_state: dict[str, torch.Tensor] = {}
    fused = {m: k for m, k in fused_targets(model, list(state), list(tensors)).items() if m not in mapping}
    for name, value in _load_fused(model, state, tensors, fused, report).items():
        canonical_state[name] = value
        report.loaded.append(name)
    for name, target in state.items():
        if name in canonical_state:
            continue
        if name in aliases:
            if name not in mapping:
                report.tied.append((name, aliases[name]))
            else:
                report.key_map[name] = mapping[name]
            continue
        ckpt_name = mapping.get(name)
        if ckpt_name is None or tuple(tensors[ckpt_name].shape) != tuple(target.shape):
            return None
        source = tensors[ckpt_name]
        if source.dtype != target.dtype:
            report.converted.append((name, _dtype_name(source.dtype), _dtype_name(target.dtype)))
            source = source.to(target.dtype)
        canonical_state[name] = source
        report.key_map[name] = ckpt_name
        report.loaded.append(name)
    # Tied names come back through the canonical tensor, not through load_state_dict (which
    # would give each name its own Parameter and silently untie them).
    result = model.load_state_dict(canonical_state, strict=False, assign=True)
    for alias, canonical in aliases.items():
        path, _, attr = canonical.rpartition(".")
        owner = model.get_submodule(path) if path else model
        shared = owner._parameters.get(attr)
        _set_tensor(model, alias, shared if shared is not None else owner._buffers[attr])
    leftovers = [n for n, t in model.state_dict(keep_vars=True).items() if t.is_meta]
    if leftovers or result.unexpected_keys:
        raise RuntimeError(f"tensors left on the meta device after loading: {leftovers}")
    used = set(report.key_map.values()) | {k for keys in report.converted_from.values() for k in keys}
    report.unexpected = [k for k in tensors if k not in used]
    if report.converted:
        copied = sum(state[n].numel() * state[n].element_size() for n, _, _ in report.converted if n in state)
        report.notes.append(f"converted {len(report.converted)} tensor(s) from the file's {report.converted[0][1]} to "
                            f"the model's {report.converted[0][2]}: a copy of {size_text(copied)} (--dtype file "
                            "keeps the file's dtype, without a copy)")
    other = " other" if report.converted_from else ""
    report.notes.append(f"built the model with empty parameters and attached the checkpoint's{other} tensors "
                        "without copying")
    return report
