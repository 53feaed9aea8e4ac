"""Edits and the edit log (``paramedit.edits``, version 1).

An :class:`Edit` says what to write where; it holds no tensors of the model, so it can be
staged, shown, exported and replayed on another machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from paramedit.core.errors import EditError

LOG_FORMAT = "paramedit.edits"
LOG_VERSION = 1
OPS = ("set", "formula", "init", "copy")
WHOLE = "[...]"


def _plain(value: Any) -> Any:
    """JSON-ready form of a value: tensors and arrays become nested lists of Python numbers."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if hasattr(value, "tolist") and not isinstance(value, (int, float, bool)):
        return value.tolist()
    return value


@dataclass(frozen=True)
class Edit:
    """One staged change of one region of one named tensor."""

    op: str
    target: str
    index: str = WHOLE
    value: Any = None  # set: a scalar, a nested list or a tensor of the region's shape
    expr: str | None = None  # formula: the safe expression over ``x``
    method: str | None = None  # init: a name from initializers.INIT_METHODS
    args: Mapping[str, Any] = field(default_factory=dict)  # init: method arguments
    seed: int | None = None  # init: random seed (0 when None)
    source: str | None = None  # copy: checkpoint path; None means this session's checkpoint
    source_name: str | None = None  # copy: tensor name in the source (defaults to target)
    source_index: str = WHOLE  # copy: region of the source tensor

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise EditError(f"unknown edit op {self.op!r}; expected one of {', '.join(OPS)}")
        if not isinstance(self.target, str) or not self.target:
            raise EditError("an edit needs a 'target' tensor name")
        if not isinstance(self.index, str):
            raise EditError(f"edit index must be a string such as '[0, :]', not {self.index!r}")
        if self.op == "set" and self.value is None:
            raise EditError(f"'set' edit of {self.target} needs a 'value'")
        if self.op == "formula" and not (isinstance(self.expr, str) and self.expr.strip()):
            raise EditError(f"'formula' edit of {self.target} needs an 'expr'")
        if self.op == "init" and not isinstance(self.method, str):
            raise EditError(f"'init' edit of {self.target} needs a 'method'")

    def describe(self) -> str:
        """One line for lists and logs: ``set fc.weight[0, :] = 0.0``."""
        where = f"{self.target}{'' if self.index == WHOLE else self.index}"
        if self.op == "set":
            if isinstance(self.value, torch.Tensor):
                text = "{}×{} values".format(*self.value.shape) if self.value.ndim == 2 else \
                    f"{self.value.numel()} values"
            else:
                text = repr(self.value)
            return f"set {where} = {text if len(text) < 40 else text[:37] + '...'}"
        if self.op == "formula":
            return f"{where} = {self.expr}"
        if self.op == "init":
            return f"init {where} with {self.method}{dict(self.args) or ''} seed {self.seed or 0}"
        src = self.source or "checkpoint"
        return f"copy {src}:{self.source_name or self.target}{self.source_index} -> {where}"

    def to_json(self) -> dict[str, Any]:
        """The edit as the log writes it: only the keys its op uses."""
        out: dict[str, Any] = {"op": self.op, "target": self.target, "index": self.index}
        if self.op == "set":
            out["value"] = _plain(self.value)
        elif self.op == "formula":
            out["expr"] = self.expr
        elif self.op == "init":
            out["method"] = self.method
            if self.args:
                out["args"] = dict(self.args)
            out["seed"] = 0 if self.seed is None else self.seed
        else:
            out["source"] = self.source
            out["source_name"] = self.source_name or self.target
            out["source_index"] = self.source_index
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, base: Path | None = None) -> Edit:
        """Read one edit; relative ``source`` paths are taken relative to ``base``."""
        if not isinstance(data, Mapping):
            raise EditError(f"an edit must be a JSON object, not {type(data).__name__}")
        known = {"op", "target", "index", "value", "expr", "method", "args", "seed", "source",
                 "source_name", "source_index"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EditError(f"edit of {data.get('target')!r} has unknown keys: {', '.join(unknown)}")
        fields = dict(data)
        source = fields.get("source")
        if isinstance(source, str) and base is not None and not Path(source).is_absolute():
            fields["source"] = str(base / source)
        if "args" in fields and not isinstance(fields["args"], Mapping):
            raise EditError(f"'args' of the edit of {data.get('target')!r} must be an object")
        fields.setdefault("index", WHOLE)
        fields.setdefault("source_index", WHOLE)
        try:
            return cls(**fields)
        except TypeError as exc:
            raise EditError(f"malformed edit {dict(data)!r}: {exc}") from None


def edit_log(edits: list[Edit]) -> dict[str, Any]:
    """The JSON document for a list of edits."""
    return {"format": LOG_FORMAT, "version": LOG_VERSION, "edits": [e.to_json() for e in edits]}


def parse_edit_log(data: Any, *, base: Path | None = None) -> list[Edit]:
    """Validate a loaded edit log document and return its edits."""
    if not isinstance(data, Mapping) or data.get("format") != LOG_FORMAT:
        raise EditError(f"not a paramedit edit log (expected \"format\": \"{LOG_FORMAT}\")")
    if data.get("version") != LOG_VERSION:
        raise EditError(f"edit log version {data.get('version')!r} is not supported (this paramedit reads {LOG_VERSION})")
    edits = data.get("edits")
    if not isinstance(edits, list):
        raise EditError("edit log has no 'edits' list")
    out = []
    for i, item in enumerate(edits, 1):
        try:
            out.append(Edit.from_json(item, base=base))
        except EditError as exc:
            raise EditError(f"edit {i} of the log: {exc.message}") from None
    return out


def read_edit_log(path: str | Path) -> list[Edit]:
    """Read an edit log file; relative copy sources are relative to the log's folder."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EditError(f"edit log {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EditError(f"edit log {str(path)!r} is not readable JSON: {exc}") from None
    return parse_edit_log(data, base=path.parent)
