"""A session: one model and/or checkpoint, its named tensors, staged edits, history.

Every write to a tensor goes through :meth:`Session.commit`, :meth:`Session.undo` or
:meth:`Session.redo`, each ``with torch.no_grad(): tensor[region].copy_(values)`` on the
tensor's own device, followed by a check that the object at that name is still the same
``nn.Parameter`` (same id, storage, device, dtype, requires_grad).
"""

from __future__ import annotations

import difflib
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paramedit.core.analysis.checkpoint_compare import CompareReport, compare_tensors
from paramedit.core.analysis.health_scan import ScanReport, narrower_glob, scan_tensors, select_names
from paramedit.core.checkpoints.dcp_writer import write_dcp
from paramedit.core.checkpoints.folder_saving import write_new_folder
from paramedit.core.checkpoints.formats import LoadedCheckpoint, load_checkpoint
from paramedit.core.checkpoints.mapped_reads import read_through_file
from paramedit.core.checkpoints.save_plan import SavePlan, plan_save
from paramedit.core.checkpoints.saving import save_tensors, write_json
from paramedit.core.checkpoints.sharded_saving import save_sharded
from paramedit.core.editing.baseline import CheckpointBaseline
from paramedit.core.editing.edit_values import compute_edit_values, source_tensor
from paramedit.core.editing.edits import WHOLE, Edit, edit_log
from paramedit.core.editing.history import CommitRecord, History, WriteAtom
from paramedit.core.editing.identity import IdentityCheck, IdentityRecord, identity_snapshot, verify_identity
from paramedit.core.editing.region_overlap import overlay
from paramedit.core.editing.regions import Region, parse_region, parse_regions
from paramedit.core.errors import (
    BackwardCheckError,
    CheckTooBigError,
    EditError,
    IdentityViolationError,
    ParameditError,
    SaveError,
)
from paramedit.core.events import EventEmitter
from paramedit.core.model.backward_check import BackwardReport, parameter_slots
from paramedit.core.model.check_losses import choose_objective
from paramedit.core.model.check_memory import estimate_check
from paramedit.core.model.devices import move_model, parse_device
from paramedit.core.model.heads import HeadLayout, head_layout
from paramedit.core.model.hf_keys import file_layout
from paramedit.core.model.inputs import ForwardInputs, build_inputs
from paramedit.core.model.load_report import LoadReport
from paramedit.core.model.partial_check import check_parameters
from paramedit.core.model.probe import ProbeResult, probe_model
from paramedit.core.model.text import TextCodec, greedy_continuation, load_tokenizer
from paramedit.core.tensor_store import TensorStore
from paramedit.core.tensor_tree import (
    TensorInfo,
    TensorStats,
    build_infos,
    padding_rows,
    read_only_reason,
    tensor_stats,
)


class Session:
    """Open tensors of a model and/or checkpoint, with staged edits, commit and undo.

    Build one with :func:`paramedit.open_session`.
    """

    def __init__(
        self,
        store: TensorStore,
        *,
        model: nn.Module | None = None,
        checkpoint: LoadedCheckpoint | None = None,
        report: LoadReport | None = None,
        spec: str | None = None,
        example_inputs: tuple | None = None,
    ) -> None:
        self.model = model
        self.checkpoint = checkpoint
        self.report = report
        self.spec = spec
        self.example_inputs = example_inputs
        self.input_exprs: list[str] | None = None  # remembered for the session (GUI dialog, CLI)
        self.events = EventEmitter()
        self.history = History()
        self.staged: list[Edit] = []
        self._store = store
        self._slots = parameter_slots(model) if model is not None else []
        self._pending: list[tuple[str, Region, torch.Tensor]] | None = []
        self._sources: dict[Path, LoadedCheckpoint] = {}
        self._regions: dict[tuple[str, tuple[int, ...]], Region] = {}
        # Every tensor ever written (history has a limit; this never forgets): a sharded save
        # rewrites only the shards that hold one of these.
        self._baseline = CheckpointBaseline(lambda: self._store.tensors, checkpoint, report, has_model=model is not None)
        self.last_backward: BackwardReport | None = None
        # The gradients the last check left, with their version: one the user has since
        # accumulated into or changed in place (its version moved on) is theirs, not ours.
        self._check_grads: list[tuple[weakref.ref[torch.Tensor], int]] = []
        self.unsaved = False
        self._identity = self._identity_snapshot()
        # Tensor version counters as last seen: an in-place change made outside paramedit (a
        # notebook's optimizer step) moves them; see changed_outside().
        self._seen_versions = self._versions()
        self._staged_versions: dict[str, int] = {}
        self._write_lock = threading.RLock()  # every write to a tensor; see _release_after_forward

    # ------------------------------------------------------------------ names and tensors
    @property
    def device(self) -> torch.device:
        return self._store.device

    @property
    def has_model(self) -> bool:
        return self.model is not None

    def names(self) -> list[str]:
        """Canonical tensor names in model order (tied aliases folded in)."""
        return list(self._store.tensors)

    def aliases(self) -> dict[str, str]:
        """Tied alias -> canonical name."""
        return dict(self._store.aliases)

    def resolve(self, name: str) -> str:
        """The canonical name for a name or tied alias, or an error listing close names."""
        canonical = self._store.aliases.get(name, name)
        if canonical not in self._store.tensors and self.report is not None:
            # A name as the checkpoint file has it (an edit log written against the file's tensors).
            by_file = {c: m for m, c in self.report.key_map.items()}
            canonical = self._store.aliases.get(by_file.get(name, name), by_file.get(name, name))
        if canonical not in self._store.tensors:
            names = [*self._store.tensors, *self._store.aliases]
            # A prefix one side has and the other lacks ("model.fc.bias" vs "fc.bias"), else a typo.
            affixed = [n for n in names if "." in name and (n.endswith("." + name) or name.endswith("." + n))]
            close = [n for n in affixed if len(n) == max(map(len, affixed))][:5]
            close = close or difflib.get_close_matches(name, names, n=5, cutoff=0.75)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise EditError(f"no tensor named {name!r}{hint}")
        return canonical

    def tensor(self, name: str) -> torch.Tensor:
        """The live tensor (the model's own ``nn.Parameter`` or buffer) at a name or alias."""
        return self._store.tensors[self.resolve(name)]

    def infos(self) -> dict[str, TensorInfo]:
        """Name -> what the tree shows about it."""
        return build_infos(self._store.tensors, self._store.kinds, self._store.aliases)

    def info(self, name: str) -> TensorInfo:
        canonical = self.resolve(name)
        return build_infos({canonical: self._store.tensors[canonical]}, self._store.kinds, self._store.aliases)[canonical]

    def stats(self, name: str) -> TensorStats:
        return tensor_stats(self.tensor(name))

    # ------------------------------------------------------------------ staging
    def stage(self, target: str, index: str = WHOLE, value: Any = None) -> Edit:
        """Stage ``tensor[index] = value`` (a scalar, nested list or tensor)."""
        return self.stage_edit(Edit("set", target, index, value=value))

    def stage_formula(self, target: str, index: str, expr: str, seed: int | None = None) -> Edit:
        return self.stage_edit(Edit("formula", target, index, expr=expr, seed=seed))

    def stage_init(self, target: str, index: str, method: str, args: Mapping[str, Any] | None = None,
                   seed: int | None = 0) -> Edit:
        return self.stage_edit(Edit("init", target, index, method=method, args=dict(args or {}), seed=seed))

    def stage_copy(self, target: str, index: str = WHOLE, source: str | None = None,
                   source_name: str | None = None, source_index: str = WHOLE) -> Edit:
        return self.stage_edit(Edit("copy", target, index, source=source, source_name=source_name,
                                    source_index=source_index))

    def stage_edit(self, edit: Edit) -> Edit:
        """Validate an edit against the current values (and earlier staged edits) and stage it.

        Raises without staging anything if the target, region or values are bad.
        """
        pending = self._pending_values()
        pending.append(self._compute(edit, pending))
        self.staged.append(edit)
        name = self.resolve(edit.target)
        self._staged_versions.setdefault(name, self._store.tensors[name]._version)
        self._pending = pending
        self.events.emit("staged", edit=edit)
        return edit

    def discard(self) -> None:
        """Drop every staged edit."""
        self.staged.clear()
        self._staged_versions.clear()
        self._pending = []
        self.events.emit("discarded")

    def staged_names(self) -> set[str]:
        return {self.resolve(e.target) for e in self.staged}

    def preview(self, name: str, index: str | Region = WHOLE) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, staged mask) of a region as it will be after commit, on the CPU.

        Costs the region plus its overlap with staged edits, never the whole tensor.
        """
        canonical = self.resolve(name)
        tensor = self._store.tensors[canonical]
        region = index if isinstance(index, Region) else self.region(canonical, index)
        view = tensor.detach()[region.index]
        mapped = self.checkpoint.mapped_files if self.checkpoint is not None else ()
        values = read_through_file(view, mapped) if mapped else None
        if values is None:
            values = view.to("cpu", copy=True)
        mask = torch.zeros(region.shape, dtype=torch.bool)
        for pname, pregion, pvalues in self._pending_values():
            if pname == canonical and overlay(values, region, pvalues, pregion):
                overlay(mask, region, torch.ones(pregion.shape, dtype=torch.bool), pregion)
        return values, mask

    def region(self, name: str, index: str) -> Region:
        """The parsed region of a tensor (cached: a GUI parses the same few texts again and again)."""
        shape = tuple(self.tensor(name).shape)
        key = (index, shape)
        region = self._regions.get(key)
        if region is None:
            if len(self._regions) > 4096:
                self._regions.clear()
            region = self._regions[key] = parse_region(index, shape)
        return region

    def _pending_values(self) -> list[tuple[str, Region, torch.Tensor]]:
        if self._pending is None or len(self._pending) != len(self.staged):
            pending: list[tuple[str, Region, torch.Tensor]] = []
            for edit in self.staged:
                pending.append(self._compute(edit, pending))
            self._pending = pending
        return list(self._pending)

    def _compute(self, edit: Edit, pending) -> tuple[str, Region, torch.Tensor]:
        canonical = self.resolve(edit.target)
        tensor = self._store.tensors[canonical]
        reason = read_only_reason(tensor)
        if reason:
            raise EditError(f"{canonical} cannot be edited: {reason}")
        region = self.region(canonical, edit.index)

        def current() -> torch.Tensor:
            values = tensor.detach()[region.index].to("cpu", copy=True)
            for pname, pregion, pvalues in pending:
                if pname == canonical:
                    overlay(values, region, pvalues, pregion)
            return values

        values = compute_edit_values(edit, tensor, region, current, self._copy_source)
        return canonical, region, values

    def _copy_source(self, edit: Edit) -> tuple[torch.Tensor, str]:
        if edit.source is None:
            if self.checkpoint is None:
                raise EditError("a copy edit without 'source' copies from the session's checkpoint, but none is open")
            ckpt = self._baseline.reference_checkpoint()
            name = edit.source_name or self._baseline.checkpoint_name(self.resolve(edit.target))
        else:
            path = Path(edit.source).expanduser().resolve()
            if path not in self._sources:
                self._sources[path] = load_checkpoint(path)
            ckpt = self._sources[path]
            name = edit.source_name or edit.target
        return source_tensor(ckpt, name), f"{ckpt.path.name}:{name}"

    # ------------------------------------------------------------------ commit, undo, redo
    def commit(self) -> list[IdentityCheck]:
        """Write every staged edit in place and verify identity; one undo step.

        Returns the identity checks of the touched tensors. Nothing is written if any value is
        invalid; if a write fails midway, the regions already written are restored.
        """
        if not self.staged:
            return []
        moved = [n for n, v in self._staged_versions.items() if self._store.tensors[n]._version != v]
        if moved:
            raise EditError(f"the values of {', '.join(moved[:5])} changed outside paramedit after the edit was staged "
                            "(an optimizer step, the notebook): nothing was written. Discard the staged edits and "
                            "stage them again on the current values.")
        pending = self._pending_values()
        record = CommitRecord(edits=list(self.staged))
        self._verify(list(dict.fromkeys(name for name, _, _ in pending)))  # refuse before writing anything
        for name, _, _ in pending:
            self._baseline.before_write(name)
        try:
            with self._write_lock, torch.no_grad():
                for name, region, values in pending:
                    tensor = self._store.tensors[name]
                    view = tensor[region.index]
                    old = view.detach().to("cpu", copy=True)
                    view.copy_(values.to(tensor.device))
                    record.atoms.append(WriteAtom(name, region.index, region.text, old, values))
        except Exception as exc:
            self._write_atoms(reversed(record.atoms), new=False)
            raise EditError(f"commit failed and was rolled back: {exc}") from exc
        try:
            checks = self._verify(record.names)
        except IdentityViolationError:
            self._write_atoms(reversed(record.atoms), new=False)
            raise
        self.history.push(record)
        self._baseline.record(record.atoms)
        self._saw_own_writes(record.names)
        self._staged_versions.clear()
        self.staged.clear()
        self._pending = []
        self.unsaved = True
        self.events.emit("committed", record=record, checks=checks)
        return checks

    def undo(self) -> CommitRecord | None:
        """Restore the old values of the last commit's regions."""
        record = self.history.pop_undo()
        if record is not None:
            self._write_atoms(reversed(record.atoms), new=False)
            self._after_history(record, "undone")
        return record

    def redo(self) -> CommitRecord | None:
        record = self.history.pop_redo()
        if record is not None:
            self._write_atoms(record.atoms, new=True)
            self._after_history(record, "redone")
        return record

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def _write_atoms(self, atoms, *, new: bool) -> None:
        with self._write_lock, torch.no_grad():
            for atom in atoms:
                tensor = self._store.tensors[atom.name]
                tensor[atom.index].copy_((atom.new if new else atom.old).to(tensor.device))

    def _after_history(self, record: CommitRecord, event: str) -> None:
        self._baseline.record(record.atoms)
        self._saw_own_writes(record.names)
        for name in record.names:  # staged values are recomputed on the values undo/redo wrote
            if name in self._staged_versions:
                self._staged_versions[name] = self._store.tensors[name]._version
        self._pending = None  # staged values were computed against other current values
        checks = self._verify(record.names)
        self.unsaved = True
        self.events.emit(event, record=record, checks=checks)

    def _identity_snapshot(self) -> dict[str, IdentityRecord]:
        return identity_snapshot(self._store.tensors)

    def _verify(self, names: list[str]) -> list[IdentityCheck]:
        return verify_identity(self._identity, self._store.lookup, names)

    # ------------------------------------------------------------------ checkpoint comparison
    def changed_mask(self, name: str, index: str | Region = WHOLE) -> torch.Tensor | None:
        """Bool CPU tensor over a region: True where the value differs from the checkpoint
        (or from the value at open). None when nothing was ever written to the tensor."""
        canonical = self.resolve(name)
        region = index if isinstance(index, Region) else self.region(canonical, index)
        return self._baseline.changed_mask(canonical, region.index)

    def edited_names(self) -> set[str]:
        """Canonical names whose values differ from the checkpoint (or from their values at open)
        now: a commit that wrote the same values, or one that was undone, leaves no mark."""
        return self._baseline.edited_names()

    def notices(self) -> list[str]:
        """The load notes a person should read: how a file was opened when that is not what they
        may expect (tensors alone, and why; a conversion that copies; a model built twice), and
        what a save would not carry over."""
        notes = list(self.checkpoint.notes if self.checkpoint is not None else [])
        if self.report is not None:
            notes += [n for n in self.report.notes if n not in notes]
        keys = ("tensors alone", "names no architecture", "does not know", "trust-remote-code", "install transformers",
                "also holds", "ignored", "a copy of", "own initial values", "full unpickler")
        return [n for n in notes if any(k in n for k in keys)]

    @property
    def needs_input(self) -> bool:
        """True when the backward check has no input unless the user gives one."""
        return self.model is not None and self.example_inputs is None and not self.input_exprs

    def changed_count(self, name: str) -> int:
        """How many elements differ from the checkpoint (or from the values at open)."""
        return self._baseline.changed_count(self.resolve(name))

    def revert(self, name: str) -> list[IdentityCheck]:
        """Put a tensor back to its checkpoint values, as one undoable commit of its own."""
        canonical = self.resolve(name)
        base = self._baseline.values(canonical)
        if base is None:
            raise EditError(f"{canonical} has no checkpoint values to revert to")
        if self._baseline.is_snapshot(canonical):
            edit = Edit("set", canonical, WHOLE, value=base.clone())
        else:
            edit = Edit("copy", canonical, WHOLE, source=None,
                        source_name=self._baseline.checkpoint_name(canonical))
        saved = (list(self.staged), self._pending)
        self.staged, self._pending = [], []
        try:
            self.stage_edit(edit)
            return self.commit()
        finally:
            self.staged, self._pending = saved[0], None

    # ------------------------------------------------------------------ changes made elsewhere
    def _versions(self) -> dict[str, int]:
        return {n: t._version for n, t in self._store.tensors.items()}

    def _saw_own_writes(self, names: list[str]) -> None:
        for name in names:
            self._seen_versions[name] = self._store.tensors[name]._version

    def changed_outside(self) -> set[str]:
        """Names whose values changed in place outside paramedit since it last looked (a notebook's
        optimizer step, ``p.data.mul_(0.5)``), from the tensors' version counters: no values are
        read. Emits "changed_outside" when there are any."""
        changed = {n for n, t in self._store.tensors.items() if t._version != self._seen_versions.get(n)}
        if changed:
            self._seen_versions.update((n, self._store.tensors[n]._version) for n in changed)
            self._pending = None  # staged values were computed on the old ones
            self.events.emit("changed_outside", names=changed)
        return changed

    # ------------------------------------------------------------------ device
    def to(self, device: str | torch.device) -> None:
        """Move the model (or the tensors) to ``device``; objects keep their identity."""
        dev = parse_device(device)
        if self.model is not None:
            move_model(self.model, dev)
        else:
            self._store.move(dev)
        self._store.device = dev
        self._pending = None
        self._identity = self._identity_snapshot()
        self._seen_versions = self._versions()
        self.events.emit("device_changed", device=str(dev))

    # ------------------------------------------------------------------ backward check
    def run_backward(
        self,
        inputs: Any = None,
        *,
        input_exprs: list[str] | None = None,
        input_shapes: list[str] | None = None,
        reduction: str = "sum",
        train_mode: bool = False,
        only: list[str] | None = None,
        check_memory: bool = True,
        loss: str | None = None,
    ) -> BackwardReport:
        """Forward and backward once on the model's device; per-parameter gradient status.

        ``only`` (globs) checks the matching parameters alone: the others are frozen for the
        check and restored after, and get no gradient memory. Unless ``check_memory`` is False,
        a check whose gradients and activations would not fit in free memory is refused before
        it starts, with the estimate and how to narrow it. ``loss`` ("auto", "sum", "mean",
        "next-token", "class:K"): "auto" takes the next-token cross-entropy for a causal language
        model given token ids, else the sum of the outputs (``reduction``).
        """
        if self.model is None:
            raise BackwardCheckError("the backward check needs a model; this session has only a checkpoint's tensors. "
                                     "Open it with a model spec (file.py:NAME) to run it.")
        if inputs is None:
            exprs = input_exprs or None
            if exprs is None and not input_shapes and self.example_inputs is None:
                exprs = self.input_exprs
            inputs = build_inputs(self.model, exprs=exprs, shapes=input_shapes, example=self.example_inputs)
            if input_exprs:
                self.input_exprs = list(input_exprs)
        every = {n: t for n, t in self._store.tensors.items() if self._store.kinds.get(n) == "parameter"}
        params = {n: every[n] for n in select_names(every, only)} if only else every
        if check_memory:
            estimate = estimate_check(self.model, params, inputs)
            if not estimate.fits:
                raise CheckTooBigError(f"{estimate.describe()}, so the check was not started. Check part of the "
                                       f"model: --only {narrower_glob(list(params))!r} (only=[...] in Python).",
                                       needs=estimate.total, free=estimate.free)
        # Ids, not tensors: holding the old gradients here would keep their memory alive.
        left = {id(g) for g, version in ((ref(), v) for ref, v in self._check_grads)
                if g is not None and g._version == version}
        objective, described = choose_objective(self.model, inputs, loss if loss is not None else
                                                (reduction if reduction != "sum" else None))
        files = self.checkpoint.mapped_files if self.checkpoint is not None else []
        report = check_parameters(self.model, inputs, every, params, slots=self._slots, objective=objective,
                                  reduction=reduction, train_mode=train_mode, disposable=left, mapped_files=files,
                                  write_lock=self._write_lock, partial=bool(only))
        report.objective = described
        if only:
            report.only = list(only)
            report.total_parameters = len(every)
        # Weak references: a user who clears .grad frees the memory; we only recognise our own.
        self._check_grads = [(weakref.ref(p.grad), p.grad._version) for p in params.values() if p.grad is not None]
        if self.report is not None and self.checkpoint is not None:
            report.not_loaded = list(self.report.missing) + [n for n, _, _ in self.report.mismatched]
        if not report.finite:
            # Not "every parameter failed": which values are not finite, so the cause is named.
            found = [f for f in self.scan().findings if f.kind in ("nan", "inf")]
            report.cause = [f"{f.tensor}{f.index} holds {'NaN' if f.kind == 'nan' else 'Inf'}"
                            + (f" ({f.count} values)" if f.count > 1 else "") for f in found]
        self.last_backward = report
        self.events.emit("backward_done", report=report)
        return report

    def probe(self, inputs: Any = None, *, top_k: int = 5, input_exprs: list[str] | None = None,
              prompt: str | None = None, generate: int = 0) -> ProbeResult:
        """One forward pass in eval mode under no_grad, summarised (top-k classes or tokens with
        their probabilities, else stats); the model's mode is restored. ``prompt`` needs a
        tokenizer in the checkpoint folder; ``generate`` adds a greedy continuation of that many
        tokens. Probe again with ``inputs=result.inputs`` to compare with :meth:`ProbeResult.compare`."""
        if self.model is None:
            raise BackwardCheckError("the probe needs a model; this session has only a checkpoint's tensors")
        codec = self._text_codec()
        if prompt is not None:
            if codec is None:
                raise BackwardCheckError("--prompt needs a tokenizer in the checkpoint folder (tokenizer.json or "
                                         "tokenizer_config.json, as save_pretrained writes them); give token ids "
                                         "with --input instead")
            ids = codec.encode(prompt)
            inputs = ForwardInputs((), {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        elif inputs is None:
            exprs = input_exprs or (self.input_exprs if self.example_inputs is None else None)
            inputs = build_inputs(self.model, exprs=exprs, example=self.example_inputs)
        result = probe_model(self.model, inputs, top_k=top_k, labels=codec.label if codec is not None else None)
        result.inputs = inputs
        if generate:
            ids = inputs.kwargs.get("input_ids") if isinstance(inputs, ForwardInputs) else None
            if ids is None:
                raise BackwardCheckError("--generate continues a text: give --prompt, or input_ids=... as --input")
            tokens = greedy_continuation(self.model, ids, generate)
            result.generated = [codec.decode(t) if codec is not None else " ".join(map(str, t)) for t in tokens]
        self.events.emit("probed", result=result)
        return result

    def head_layout(self, name: str, *, heads: int | None = None, parts: int = 1) -> HeadLayout:
        """How a tensor splits into attention heads (from the model's config or modules, else the
        ``heads`` count given); see :mod:`paramedit.core.model.heads`."""
        canonical = self.resolve(name)
        return head_layout(self.model, canonical, tuple(self._store.tensors[canonical].shape), heads=heads, parts=parts)

    def stage_regions(self, target: str, regions: str, value: Any = None, *, op: str = "set",
                      **fields: Any) -> list[Edit]:
        """Stage one edit per region of ``regions`` (``;``-separated): committed as one step, logged
        as one edit each. Nothing is staged if any region or value is bad."""
        shape = tuple(self.tensor(target).shape)
        texts = [r.text for r in parse_regions(regions, shape)]
        edits = [Edit(op, target, text, value=value, **fields) if op == "set" else Edit(op, target, text, **fields)
                 for text in texts]
        pending = self._pending_values()
        for edit in edits:  # every one validated before any is staged
            pending.append(self._compute(edit, pending))
        self.staged.extend(edits)
        self._pending = pending
        for edit in edits:
            self.events.emit("staged", edit=edit)
        return edits

    @property
    def has_tokenizer(self) -> bool:
        """Whether the checkpoint folder holds a tokenizer that reads (``probe(prompt=...)``, token
        labels). The first call loads it; one that cannot be read counts as none (the probe says why)."""
        try:
            return self._text_codec() is not None
        except BackwardCheckError:
            return False

    def _text_codec(self) -> TextCodec | None:
        if not hasattr(self, "_codec"):
            self._codec = load_tokenizer(self.checkpoint.path) if self.checkpoint is not None else None
        return self._codec

    # ------------------------------------------------------------------ the whole model
    def scan(self, only: list[str] | None = None, *, names: list[str] | None = None,
             progress=None, cancelled=None) -> ScanReport:
        """Scan every floating-point tensor (or those matching the ``only`` globs, or ``names``)
        for NaN, Inf, outliers, dead rows and columns and constant tensors; see :mod:`health_scan`."""
        chosen = names if names is not None else select_names(self._store.tensors, only)
        files = self.checkpoint.mapped_files if self.checkpoint is not None else ()
        return scan_tensors({n: self._store.tensors[n] for n in chosen}, files=files,
                            padding_rows=padding_rows(self.model) if self.model is not None else None,
                            checkpoint=str(self.checkpoint.path) if self.checkpoint is not None else None,
                            progress=progress, cancelled=cancelled)

    def compare(self, other: str | Path | LoadedCheckpoint | None = None, *, atol: float = 0.0,
                trust: bool = False, container_key: str | None = None, progress=None,
                cancelled=None) -> CompareReport:
        """Compare this session's current tensors (B) with a reference checkpoint (A): ``other``,
        or, when None, the checkpoint the session was opened from (what did my edits do)."""
        if other is None:
            reference = self._baseline.reference_checkpoint()
        elif isinstance(other, LoadedCheckpoint):
            reference = other
        else:
            reference = load_checkpoint(other, trust=trust, container_key=container_key)
        files = [*reference.mapped_files, *(self.checkpoint.mapped_files if self.checkpoint is not None else ())]
        label = str(self.checkpoint.path) if self.checkpoint is not None else "the open model"
        current = dict(self._store.tensors)
        # A tied alias is compared only where A has it too (save_pretrained drops tied weights).
        current.update((alias, current[c]) for alias, c in self._store.aliases.items()
                       if c in current and alias in reference.tensors)
        return compare_tensors(reference.tensors, current, atol=atol, a_label=str(reference.path),
                               b_label=label, files=files, progress=progress, cancelled=cancelled)

    # ------------------------------------------------------------------ saving
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """(canonical name -> tensor, alias -> canonical) of the session's own tensors (model names)."""
        if self.model is None:
            return dict(self._store.tensors), dict(self._store.aliases)
        state = self.model.state_dict(keep_vars=True)
        tensors = {n: t for n, t in state.items() if n not in self._store.aliases}
        aliases = {n: self._store.aliases[n] for n in state if n in self._store.aliases}
        return tensors, aliases

    def plan_save(self, path: str | Path, *, add_missing: bool = False) -> SavePlan:
        """What :meth:`save` would write to ``path``, and what a user should know first.

        The checkpoint's own layout: every tensor it had under its own names, with the edits
        applied; tensors the model has and the file lacks only with ``add_missing``.
        """
        tensors, aliases = self.state_dict()
        converted: dict[str, tuple[str, torch.Tensor]] = {}
        if self.report is not None and self.report.converted_from and self.model is not None:
            fused = {name: self._store.tensors[name] for name in self.report.converted_from}
            back = file_layout(self.model, fused)  # transformers' own reverse conversion
            for name, keys in self.report.converted_from.items():
                converted.update((k, (name, back[k])) for k in keys if k in back)
        return plan_save(path, checkpoint=self.checkpoint, report=self.report, live=tensors,
                         live_aliases=aliases, touched=set(self._baseline.touched), add_missing=add_missing,
                         converted=converted)

    def save(self, path: str | Path, *, add_missing: bool = False, allow_lost_edits: bool = False) -> Path:
        """Save atomically in the checkpoint's own layout (see :meth:`plan_save`).

        Raises :class:`SaveError` without writing anything when the save would rewrite a file
        it cannot keep whole (TorchScript, a pickled model, a container with non-tensor content),
        when an edited value does not fit the file's dtype, or when edits landed on tensors the
        file does not hold (``add_missing`` writes those tensors; ``allow_lost_edits`` saves
        without them).
        """
        plan = self.plan_save(path, add_missing=add_missing)
        if plan.refusal:
            raise SaveError(plan.refusal)
        if plan.lost_edits and not allow_lost_edits:
            raise SaveError(f"edits to {', '.join(plan.lost_edits[:6])} would not be saved: the file does not hold "
                            f"{'that tensor' if len(plan.lost_edits) == 1 else 'those tensors'}. Nothing was written; "
                            "save with add_missing=True (--add-missing) to add them, or undo those edits.")
        if self.checkpoint is not None and self._baseline.shares_checkpoint_memory:
            # Map the file as opened before it may be replaced, so "changed vs checkpoint" and
            # "revert" keep meaning the checkpoint the session started from.
            self._baseline.reference_checkpoint()
        if plan.new_folder is not None and self.checkpoint is not None:
            out = write_new_folder(plan.new_folder, Path(self.checkpoint.path), plan.target.name,
                                   lambda where: self._write_planned(plan, where))
        else:
            out = self._write_planned(plan, plan.target)
        self.unsaved = False
        self.events.emit("saved", path=out)
        return out

    def _write_planned(self, plan: SavePlan, target: Path) -> Path:
        if plan.dcp_folder is not None and self.checkpoint is not None:
            source = Path(self.checkpoint.path)
            source = source if source.is_dir() else source.parent
            values = {plan.dcp_keys[n]: t for n, t in plan.tensors.items() if n in plan.dcp_keys}
            changed = {plan.dcp_keys[n] for n in plan.changed if n in plan.dcp_keys}
            return write_dcp(source, plan.dcp_folder, values, changed, trust=self.checkpoint.trusted)
        canonical = {n: t for n, t in plan.tensors.items() if n not in plan.aliases}
        if plan.sharded:
            written = save_sharded(canonical, plan.aliases, target, source=self.checkpoint,
                                   changed=plan.changed, prefix=plan.prefix)
            return written[-1]  # the index, written last
        p = plan.prefix
        return save_tensors({p + n: t for n, t in canonical.items()}, target,
                            aliases={p + a: p + c for a, c in plan.aliases.items()}, wrap=plan.wrap,
                            metadata=plan.metadata)

    def edits(self) -> list[Edit]:
        """The committed edits currently applied, oldest first."""
        return self.history.applied_edits()

    def edit_log(self) -> dict[str, Any]:
        return edit_log(self.edits())

    def export_edits(self, path: str | Path) -> Path:
        return write_json(path, self.edit_log())

    def apply_edits(self, edits: list[Edit]) -> list[IdentityCheck]:
        """Stage and commit a list of edits as one step; nothing is written if any is bad."""
        saved = list(self.staged)
        try:
            for i, edit in enumerate(edits, 1):
                try:
                    self.stage_edit(edit)
                except ParameditError as exc:
                    exc.message = f"edit {i} ({edit.describe()}): {exc.message}"
                    exc.args = (exc.message,)
                    raise
        except BaseException:
            self.staged = saved
            self._pending = None
            raise
        return self.commit()

    @property
    def has_unsaved_changes(self) -> bool:
        return self.unsaved or bool(self.staged)
