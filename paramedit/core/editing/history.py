"""Undo/redo of commits: each step keeps only the old and new values of the regions it wrote.

Memory grows with the edited regions, not with the tensors (an edit of one cell of a
50257 x 768 embedding stores two one-element tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from paramedit.core.editing.edits import Edit


@dataclass
class WriteAtom:
    """One region write: enough to undo and redo it."""

    name: str
    index: tuple
    region_text: str
    old: torch.Tensor
    new: torch.Tensor

    @property
    def nbytes(self) -> int:
        return self.old.numel() * self.old.element_size() + self.new.numel() * self.new.element_size()


@dataclass
class CommitRecord:
    """One commit: the edits it applied and the writes that did it."""

    edits: list[Edit]
    atoms: list[WriteAtom] = field(default_factory=list)
    label: str = ""

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.atoms)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(a.name for a in self.atoms))


class History:
    """A linear undo stack of commits; committing after an undo drops the redo branch."""

    def __init__(self, limit: int | None = None) -> None:
        self._done: list[CommitRecord] = []
        self._undone: list[CommitRecord] = []
        self.limit = limit

    def push(self, record: CommitRecord) -> None:
        self._done.append(record)
        self._undone.clear()
        if self.limit is not None and len(self._done) > self.limit:
            del self._done[0]

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def pop_undo(self) -> CommitRecord | None:
        if not self._done:
            return None
        record = self._done.pop()
        self._undone.append(record)
        return record

    def pop_redo(self) -> CommitRecord | None:
        if not self._undone:
            return None
        record = self._undone.pop()
        self._done.append(record)
        return record

    def applied_edits(self) -> list[Edit]:
        """Edits of every commit that is currently applied, oldest first (the edit log)."""
        return [e for r in self._done for e in r.edits]

    @property
    def records(self) -> list[CommitRecord]:
        return list(self._done)

    @property
    def undone_records(self) -> list[CommitRecord]:
        """The undone commits Redo brings back, the next one to come back first."""
        return list(reversed(self._undone))

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._done) + sum(r.nbytes for r in self._undone)
