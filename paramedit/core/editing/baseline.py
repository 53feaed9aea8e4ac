"""What a tensor's values were before this session wrote to it: the checkpoint's, or its values at open.

"Edited" means the values differ from that baseline now, not that a commit touched them: a
commit that wrote the same values, or one that was undone, leaves no mark. Deciding it costs
the regions ever written, not the tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import torch

from paramedit.core.checkpoints.formats import LoadedCheckpoint, load_checkpoint
from paramedit.core.errors import EditError

if TYPE_CHECKING:
    from paramedit.core.editing.history import WriteAtom
    from paramedit.core.model.load_report import LoadReport

__all__ = ["CheckpointBaseline", "differs"]


def differs(now: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Where ``now`` differs from ``old`` (same shape and dtype); NaN where both are NaN is no change."""
    diff = now != old
    if now.is_floating_point():
        diff &= ~(torch.isnan(now) & torch.isnan(old))
    return diff


class CheckpointBaseline:
    """The values a session's tensors are compared with, and which ones differ from them now.

    ``live`` maps canonical names to the live tensors. With a model whose tensors are the
    checkpoint's own (tensors alone, or attached with ``assign``), the original values come
    from a second private mapping of the file; when the model holds copies, from the loaded
    checkpoint itself. A tensor the checkpoint does not have is snapshotted before its first write.
    """

    def __init__(self, live: Callable[[], Mapping[str, torch.Tensor]], checkpoint: LoadedCheckpoint | None,
                 report: LoadReport | None, *, has_model: bool) -> None:
        self._live = live
        self.checkpoint = checkpoint
        self.report = report
        self._has_model = has_model
        self._snapshots: dict[str, torch.Tensor] = {}
        self._reference: LoadedCheckpoint | None = None
        # Every tensor ever written (a save rewrites the shards that hold one) and the regions written.
        self.touched: set[str] = set()
        self._written: dict[str, dict[str, tuple]] = {}
        self._edited: set[str] | None = None

    # ----------------------------------------------------------------- where values come from
    def checkpoint_name(self, name: str) -> str:
        if self.report is not None:
            return self.report.key_map.get(name, name)
        return name

    @property
    def shares_checkpoint_memory(self) -> bool:
        """Whether edits land in the loaded checkpoint's own tensors (tensors alone, or assigned)."""
        return not self._has_model or (self.report is not None and self.report.assigned)

    def reference_checkpoint(self) -> LoadedCheckpoint:
        """The checkpoint's original values, never the edited live ones."""
        if self.checkpoint is None:
            raise EditError("this session has no checkpoint")
        if not self.shares_checkpoint_memory:
            return self.checkpoint  # the model holds copies; the loaded dict keeps the file's values
        if self._reference is None:
            # A second private mapping of the same file: costs address space, not memory.
            self._reference = load_checkpoint(self.checkpoint.path, trust=self.checkpoint.trusted,
                                              container_key=self.checkpoint.container_key)
        return self._reference

    def has_checkpoint_values(self, name: str) -> bool:
        if self.checkpoint is None:
            return False
        if self.report is None:
            return True
        return name in self.report.key_map and not any(m[0] == name for m in self.report.mismatched)

    def is_snapshot(self, name: str) -> bool:
        return name in self._snapshots

    def values(self, name: str) -> torch.Tensor | None:
        """The baseline tensor of a canonical name, or None when there is none."""
        if name in self._snapshots:
            return self._snapshots[name]
        if not self.has_checkpoint_values(name):
            return None
        ckpt = self.reference_checkpoint()
        key = self.checkpoint_name(name)
        return ckpt.tensors.get(ckpt.aliases.get(key, key))

    def before_write(self, name: str) -> None:
        """Before the first write to a tensor with no checkpoint values, keep its values at open."""
        if name not in self._snapshots and not self.has_checkpoint_values(name):
            self._snapshots[name] = self._live()[name].detach().to("cpu", copy=True)

    # ----------------------------------------------------------------- what differs now
    def record(self, atoms: Iterable[WriteAtom]) -> None:
        """Note the regions a commit, undo or redo wrote."""
        for atom in atoms:
            self.touched.add(atom.name)
            self._written.setdefault(atom.name, {})[atom.region_text] = atom.index
        self._edited = None

    def changed_mask(self, name: str, index: tuple) -> torch.Tensor | None:
        """Bool CPU tensor over a region: where the value differs from the baseline (None when the
        tensor was never written)."""
        base = self.values(name) if name in self.touched else None
        if base is None:
            return None
        now = self._live()[name].detach()[index].to("cpu")
        return differs(now, base[index].to(now.dtype))

    def changed_count(self, name: str) -> int:
        base = self.values(name)
        if base is None:
            return 0
        now = self._live()[name].detach()
        return int(torch.count_nonzero(differs(now, base.to(device=now.device, dtype=now.dtype))))

    def edited_names(self) -> set[str]:
        """Canonical names whose values differ from the baseline now (checked where written only)."""
        if self._edited is None:
            self._edited = {name for name, regions in self._written.items()
                            if any(self._region_differs(name, index) for index in regions.values())}
        return set(self._edited)

    def _region_differs(self, name: str, index: tuple) -> bool:
        mask = self.changed_mask(name, index)
        return bool(mask is not None and mask.any())
