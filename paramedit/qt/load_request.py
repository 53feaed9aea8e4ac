"""What to open: a model spec and/or a checkpoint, and how (plain data, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


def short_name(text: str) -> str:
    """``/a/b/model.py:Net`` -> ``model.py:Net``; ``/a/ckpt.pt`` -> ``ckpt.pt``; ``pkg.mod:Net`` unchanged."""
    path, sep, name = text.rpartition(":")
    if sep and path and "/" not in name and "\\" not in name:
        return f"{Path(path).name}:{name}" if ("/" in path or "\\" in path) else text
    return Path(text).name if ("/" in text or "\\" in text) else text


@dataclass(frozen=True)
class LoadRequest:
    """Arguments for :func:`paramedit.open_session`, as the window collects them.

    ``model`` is a spec string, or an ``nn.Module`` (a copy of the open model, when a checkpoint is
    opened into a model that was given as an object rather than a spec).
    """

    model: Any = None
    checkpoint: str | None = None
    device: str = "cpu"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    trust: bool = False
    container_key: str | None = None
    architecture: bool = True  # a Hugging Face folder alone is built with the architecture its config names
    trust_remote_code: bool = False

    def trusted(self) -> LoadRequest:
        return replace(self, trust=True)

    def model_file(self) -> str | None:
        """The ``.py`` file a ``path/to/file.py:NAME`` spec imports (None for ``package.module:NAME``)."""
        if not isinstance(self.model, str):
            return None
        path, sep, _name = self.model.rpartition(":")
        return path if sep and path.endswith(".py") else None

    def _model_text(self, short: bool) -> str | None:
        if self.model is None:
            return None
        if isinstance(self.model, str):
            return short_name(self.model) if short else self.model
        return f"the open {type(self.model).__name__}"

    def describe(self) -> str:
        """Full paths, for messages."""
        parts = [p for p in (self._model_text(False), self.checkpoint) if p]
        return " + ".join(parts) or "nothing"

    def label(self) -> str:
        """File names only, for the window title."""
        parts = [p for p in (self._model_text(True), self.checkpoint and short_name(self.checkpoint)) if p]
        return " + ".join(parts)
