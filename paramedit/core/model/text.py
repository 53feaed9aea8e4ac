"""Text in and out of a language model: the tokenizer saved in a checkpoint folder.

A ``--prompt`` is encoded with the tokenizer files a Hugging Face folder holds
(``tokenizer.json``, ``tokenizer_config.json``, ...), read through transformers' ``AutoTokenizer``
(the ``[hf]`` extra), and token ids are decoded back to text for the probe's top-k and a greedy
continuation.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paramedit.core.errors import BackwardCheckError
from paramedit.core.model.inputs import ForwardInputs

__all__ = ["TextCodec", "greedy_continuation", "load_tokenizer"]

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "spiece.model")


class TextCodec:
    """A folder's tokenizer, reduced to what the probe needs."""

    def __init__(self, tokenizer: Any, folder: Path) -> None:
        self.tokenizer = tokenizer
        self.folder = folder

    def encode(self, text: str) -> torch.Tensor:
        ids = self.tokenizer(text, return_tensors="pt")["input_ids"]
        if ids.numel() == 0:
            raise BackwardCheckError(f"the prompt {text!r} encodes to no tokens")
        return ids

    def label(self, index: int) -> str | None:
        try:
            return self.tokenizer.decode([index])
        except Exception:
            return None

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)


def load_tokenizer(folder: str | Path | None) -> TextCodec | None:
    """The tokenizer a checkpoint folder holds, or None when it holds none."""
    if folder is None:
        return None
    folder = Path(folder)
    folder = folder if folder.is_dir() else folder.parent
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        return None
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise BackwardCheckError("reading the folder's tokenizer needs transformers: pip install 'paramedit[hf]'") from exc
    try:
        return TextCodec(AutoTokenizer.from_pretrained(folder), folder)
    except Exception as exc:
        raise BackwardCheckError(f"the tokenizer in {folder} could not be read: {exc}") from exc


def greedy_continuation(model: nn.Module, ids: torch.Tensor, steps: int) -> list[list[int]]:
    """``steps`` greedy next tokens after ``ids`` (batch, tokens), per sample (eval, no_grad)."""
    if steps <= 0:
        return [[] for _ in range(ids.shape[0])]
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None) or math.inf
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    out: list[list[int]] = [[] for _ in range(ids.shape[0])]
    try:
        model.eval()
        current = ids.to(device)
        with torch.no_grad():
            for _ in range(steps):
                if current.shape[1] >= limit:
                    break
                inputs = ForwardInputs((), {"input_ids": current})
                logits = getattr(inputs.call(model), "logits", None)
                if logits is None:
                    raise BackwardCheckError("--generate needs a language model whose output has logits")
                nxt = logits[:, -1, :].argmax(dim=-1, keepdim=True)
                current = torch.cat([current, nxt], dim=1)
                for row, token in enumerate(nxt.reshape(-1).tolist()):
                    out[row].append(int(token))
    finally:
        model.train(was_training)
    return out
