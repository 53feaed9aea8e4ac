"""What a save writes: the checkpoint's own layout, with the edits applied.

Whatever model is attached, a save writes every tensor the checkpoint had, under the
checkpoint's own names (its ``module.`` prefix, its Lightning ``model.`` prefix, its unexpected
keys), in the file's own dtypes, with the live (edited) values where the model holds that
tensor and the file's values where it does not. Tensors the model has and the file lacks are
written only when asked (``add_missing``). Saving over the file keeps its structure (containers,
other tensor dicts) or is refused when it cannot (TorchScript, a pickled model, non-tensor
content). :class:`SavePlan` also says, in words, everything about the save a user should know
before it happens: what does not fit between model and file, what is left out, which edits
would not be written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from paramedit.core.checkpoints.detect import folder_save_target, resolve_folder
from paramedit.core.checkpoints.folder_saving import is_new_folder_target, weights_name_for_new_folder
from paramedit.core.checkpoints.formats import LoadedCheckpoint
from paramedit.core.checkpoints.saving import unsavable_reason
from paramedit.core.checkpoints.sharded_saving import INDEX_SUFFIX
from paramedit.core.errors import CheckpointError

if TYPE_CHECKING:
    from paramedit.core.model.load_report import LoadReport

__all__ = ["SavePlan", "plan_save"]


def _few(names: list[str], n: int = 6) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", … ({len(names) - n} more)" if len(names) > n else "")


@dataclass
class SavePlan:
    """One save, decided before anything is written."""

    target: Path  # the file, folder or shard index written
    tensors: dict[str, torch.Tensor]  # names as the file has them (without ``prefix``), in its order
    aliases: dict[str, str] = field(default_factory=dict)  # tied name -> name it shares storage with
    prefix: str = ""  # the wrapper prefix (``module.``) every name gets back when written
    sharded: bool = False
    in_place: bool = False
    refusal: str | None = None  # why this save must not happen (a file it cannot rewrite whole)
    mismatch: list[str] = field(default_factory=list)  # where the model and the file do not fit
    left_out: list[str] = field(default_factory=list)  # what the file had that this save does not write
    added: list[str] = field(default_factory=list)  # tensors the file lacked, written as asked
    lost_edits: list[str] = field(default_factory=list)  # edited tensors this save does not write
    restored_dtype: list[str] = field(default_factory=list)  # written back in the file's dtype
    changed: set[str] = field(default_factory=set)  # names whose values may differ from the file's
    wrap: Callable[[dict[str, torch.Tensor]], object] | None = None  # rebuilds the file's structure
    metadata: dict[str, str] = field(default_factory=dict)  # a safetensors file's header metadata, kept
    new_folder: Path | None = None  # a Hugging Face folder saved as a new, complete folder
    dcp_folder: Path | None = None  # a torch.distributed.checkpoint folder written back as one
    dcp_keys: dict[str, str] = field(default_factory=dict)  # name (with prefix) -> the folder's key (fqn)

    @property
    def fits(self) -> bool:
        """The model and the file have the same tensors with the same shapes (or there is no model)."""
        return not self.mismatch

    def warnings(self) -> list[str]:
        """Everything a user should read before this save, one sentence each."""
        out = list(self.mismatch)
        if self.lost_edits:
            out.append(f"edits to {len(self.lost_edits)} tensor(s) the file does not hold will NOT be saved: "
                       f"{_few(self.lost_edits)}")
        if self.left_out:
            out.append("not carried over from the file: " + "; ".join(self.left_out))
        return out

    def summary(self) -> str:
        """One paragraph: where, how many tensors, and the warnings."""
        where = "over the file it was opened from" if self.in_place else f"to {self.target}"
        text = f"saving {len(self.tensors)} tensor(s) {where}"
        if self.added:
            text += f", {len(self.added)} of them added from the model"
        warnings = self.warnings()
        return text + (". " + " ".join(w[0].upper() + w[1:] + "." for w in warnings) if warnings else ".")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _target(path: Path) -> tuple[Path, bool]:
    """(what is written, whether it is a sharded set)."""
    target = folder_save_target(path.expanduser())
    return target, target.is_dir() or target.name.endswith(INDEX_SUFFIX)


def _cluttered_folder(target: Path) -> str | None:
    """Why saving a set into an existing folder must not happen: it holds other things and no
    checkpoint of its own (a set would be mixed into someone else's files)."""
    if not target.is_dir():
        return None
    try:
        others = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))
    except OSError:
        return None
    if not others:
        return None
    try:
        resolve_folder(target)
        return None  # a checkpoint folder: its set (or save_pretrained file) is what a save replaces
    except CheckpointError:
        pass
    shown = ", ".join(others[:5]) + (", …" if len(others) > 5 else "")
    return (f"{target} exists and holds other files ({shown}) but no checkpoint: nothing was written. Save into "
            "a new or empty folder, or name a file (.safetensors, .pt).")


def _is_in_place(target: Path, sharded: bool, ckpt: LoadedCheckpoint) -> bool:
    candidates = [ckpt.path, *ckpt.files]
    if sharded:
        folder = target if target.is_dir() else target.parent
        return any(_same_file(folder, c if c.is_dir() else c.parent) for c in candidates)
    return any(_same_file(target, c) for c in candidates if c.is_file())


def _model_side_name(ckpt_to_model: Mapping[str, str], model_name: str) -> str:
    """The name the file would give a model tensor it lacks, by the prefix rule the other names follow."""
    for c, m in ckpt_to_model.items():
        if c == m:
            return model_name
        if c.endswith(m):
            return c[: len(c) - len(m)] + model_name
        if m.endswith(c):
            cut = m[: len(m) - len(c)]
            return model_name[len(cut):] if model_name.startswith(cut) else model_name
    return model_name


def plan_save(
    path: str | Path,
    *,
    checkpoint: LoadedCheckpoint | None,
    report: LoadReport | None,
    live: Mapping[str, torch.Tensor],
    live_aliases: Mapping[str, str],
    touched: set[str],
    add_missing: bool = False,
    converted: Mapping[str, tuple[str, torch.Tensor]] | None = None,
) -> SavePlan:
    """Decide what saving to ``path`` writes.

    ``live`` maps every canonical name of the session (model names with a model, checkpoint
    names without) to its live tensor; ``live_aliases`` maps tied names to canonical ones;
    ``touched`` names the canonical tensors edits were written to. ``converted`` gives, for
    file names whose tensors the model holds fused (transformers' conversions), (the model's
    canonical name, the value in the file's layout).
    """
    target, sharded = _target(Path(path))
    new_folder = dcp_folder = None
    if checkpoint is not None and checkpoint.format == "dcp":
        source = Path(checkpoint.path) if Path(checkpoint.path).is_dir() else Path(checkpoint.path).parent
        given = Path(path).expanduser()
        given = given.parent if given.name == ".metadata" else given
        if _same_file(given, source) or is_new_folder_target(given):
            dcp_folder, target, sharded = given, given, False
    if checkpoint is not None and checkpoint.format == "hf-folder" and is_new_folder_target(target):
        new_folder = target
        weights = weights_name_for_new_folder(Path(checkpoint.path))
        target, sharded = new_folder / weights, weights.endswith(".index.json")
    cluttered = _cluttered_folder(target) if new_folder is None and dcp_folder is None else None
    if checkpoint is None:
        return SavePlan(target, dict(live), dict(live_aliases), sharded=sharded, changed=set(touched),
                        refusal=cluttered)

    ckpt = checkpoint
    in_place = _is_in_place(target, sharded, ckpt)
    if dcp_folder is not None:
        source = Path(ckpt.path) if Path(ckpt.path).is_dir() else Path(ckpt.path).parent
        in_place = _same_file(dcp_folder, source)
    has_model = report is not None

    # Which live tensor stands for each name of the file.
    if has_model:
        assert report is not None
        mismatched = {m for m, _, _ in report.mismatched}
        ckpt_to_model: dict[str, str] = {}
        for model_name, ckpt_name in report.key_map.items():
            if model_name not in mismatched:
                ckpt_to_model.setdefault(ckpt_name, model_name)
    else:
        ckpt_to_model = {n: n for n in ckpt.tensors}

    def live_for(model_name: str) -> tuple[str, torch.Tensor] | None:
        canonical = live_aliases.get(model_name, model_name)
        tensor = live.get(canonical)
        return (canonical, tensor) if tensor is not None else None

    prefix = ckpt.stripped_prefix or ""
    order = [str(k)[len(prefix):] if str(k).startswith(prefix) else str(k) for k in ckpt.original_entries]
    names = [n for n in order if n in ckpt.tensors or n in ckpt.skipped_tensors]
    names += [n for n in ckpt.tensors if n not in set(names)]  # read by other means (DCP): their own order
    plan = SavePlan(target, {}, prefix=prefix, sharded=sharded, in_place=in_place, new_folder=new_folder,
                    dcp_folder=dcp_folder)
    if dcp_folder is not None:
        path_of = ckpt.layout.container_path
        plan.dcp_keys = {n: ckpt.layout.fqns.get((*path_of, prefix + n), prefix + n) for n in ckpt.tensors}
    written: set[str] = set()  # canonical live names this save writes
    overflow: list[str] = []  # edited values the file's own dtype cannot hold
    fmt = "safetensors" if sharded or target.suffix.lower() == ".safetensors" else "torch"
    cannot: list[str] = []
    for name in names:
        original = ckpt.tensors.get(name)
        if original is None:  # sparse, quantized, ...: written back as it was, where the format can
            reason = unsavable_reason(name, ckpt.skipped_tensors[name], fmt)
            if reason:
                cannot.append(reason)
            else:
                plan.tensors[name] = ckpt.skipped_tensors[name]
            continue
        if converted and name in converted:
            canonical, tensor = converted[name]
            found = (canonical, tensor)
        else:
            found = live_for(ckpt_to_model[name]) if name in ckpt_to_model else None
        if found is None:
            plan.tensors[name] = original
            continue
        canonical, tensor = found
        written.add(canonical)
        if canonical in touched:
            plan.changed.add(name)
        if tensor.dtype != original.dtype:
            plan.restored_dtype.append(name)
            plan.changed.add(name)
            in_file_dtype = tensor.detach().to(original.dtype)
            if canonical in touched:
                problem = _does_not_fit(name, tensor.detach(), in_file_dtype)
                if problem:
                    overflow.append(problem)
            tensor = in_file_dtype
        plan.tensors[name] = tensor
    plan.aliases = {a: c for a, c in ckpt.aliases.items() if a in plan.tensors and c in plan.tensors}

    if has_model:
        assert report is not None
        _fit(plan, report, ckpt_to_model, live_for, add_missing, written)
    plan.lost_edits = sorted(n for n in touched if n not in written)
    if overflow:
        plan.refusal = (f"{'; '.join(overflow[:3])}: the model computes in another dtype than the file stores, and "
                        "these edited values would be written as Inf or lost. Nothing was written; edit them to "
                        "values the file's dtype can hold.")
    if cluttered:
        plan.refusal = cluttered
    elif in_place:
        refusal = ckpt.rewrite_refusal()
        if refusal:
            plan.refusal = f"{refusal}. Save to another file instead (-o OUT on the command line, Save As in the window)."
    else:
        plan.left_out = ckpt.layout.left_out()
    if cannot and in_place and not plan.refusal:
        plan.refusal = (f"{ckpt.path} holds {len(cannot)} tensor(s) that cannot be written back in its format "
                        f"({'; '.join(cannot[:3])}): a rewrite would lose them. Save to another file instead.")
    if cannot:
        plan.left_out.append(f"{len(cannot)} tensor(s) that cannot be written here: {'; '.join(cannot[:4])}")
    if ckpt.layout.kind == "safetensors":
        plan.metadata = {k: v for k, v in ckpt.metadata.items() if not k.startswith("paramedit.")}
    if ckpt.layout.kind == "state_dict":
        # Torch output keeps the module versions load_state_dict reads (_metadata) and, over the
        # file itself, its containers and their other tensors.
        layout = ckpt.layout if in_place else type(ckpt.layout)("state_dict")
        original_entries = ckpt.original_entries
        plan.wrap = lambda state: layout.rebuild(state, original_entries)
    return plan


def _does_not_fit(name: str, live: torch.Tensor, converted: torch.Tensor) -> str | None:
    """Why an edited tensor cannot be written in the file's dtype (a finite value turned Inf), or None."""
    if not converted.is_floating_point() or not live.is_floating_point():
        return None
    bad = torch.isfinite(live) & ~torch.isfinite(converted)
    if not bool(bad.any()):
        return None
    first = tuple(int(i) for i in bad.nonzero()[0])
    dtype = str(converted.dtype).removeprefix("torch.")
    index = "[" + ", ".join(map(str, first)) + "]"
    return (f"{name}{index} = {float(live[first]):g} does not fit the file's {dtype} (largest "
            f"{torch.finfo(converted.dtype).max:g}; {int(bad.sum())} value(s) in all)")


def _fit(plan: SavePlan, report: LoadReport, ckpt_to_model: Mapping[str, str],
         live_for: Callable[[str], tuple[str, torch.Tensor] | None], add_missing: bool, written: set[str]) -> None:
    """Say where the model and the file do not fit, and add the model's extra tensors if asked."""
    if report.missing:
        if add_missing:
            for model_name in report.missing:
                found = live_for(model_name)
                if found is None:
                    continue
                name = _model_side_name(ckpt_to_model, model_name)
                if name in plan.tensors:
                    continue
                plan.tensors[name] = found[1]
                plan.added.append(name)
                plan.changed.add(name)
                written.add(found[0])
            plan.mismatch.append(f"{len(report.missing)} tensor(s) the model has and the file lacks are added, as asked "
                                 f"(--add-missing): {_few(report.missing)}")
        else:
            plan.mismatch.append(f"{len(report.missing)} tensor(s) the model has and the file lacks are not written "
                                 f"(unless asked: --add-missing, add_missing=True): {_few(report.missing)}")
    if report.unexpected:
        plan.mismatch.append(f"{len(report.unexpected)} tensor(s) the file has and the model lacks are written back "
                             f"unchanged: {_few(report.unexpected)}")
    if report.mismatched:
        items = [f"{n} (file {list(c)}, model {list(m)})" for n, c, m in report.mismatched]
        plan.mismatch.append(f"{len(report.mismatched)} tensor(s) with other shapes in the file are written back as "
                             f"the file had them, not as the model holds them: {_few(items)}")
