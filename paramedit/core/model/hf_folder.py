"""A Hugging Face folder is a model by itself: the architecture its ``config.json`` names.

``paramedit FOLDER`` builds ``config.architectures[0]`` through transformers (the optional extra
``paramedit[hf]``) with its parameters on ``meta`` and its buffers computed for real, in the
dtype the folder's weights are stored in, and the folder's memory-mapped tensors are attached as
they are: opening costs what mapping costs, whatever the size. Configs that need code from the
folder (``auto_map``) are built only with ``trust_remote_code``. When the architecture cannot be
built (no transformers, no ``architectures``, a class this transformers does not know, remote
code not trusted) the folder opens as tensors alone, and the note says why and what to do.
"""

from __future__ import annotations

import json
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from paramedit.core.checkpoints.formats import LoadedCheckpoint
from paramedit.core.errors import ModelSpecError

__all__ = ["FolderArchitecture", "folder_architecture", "remote_code_files", "stored_dtype"]


def stored_dtype(ckpt: LoadedCheckpoint) -> torch.dtype | None:
    """The floating dtype most of the checkpoint's values are stored in (by element count)."""
    counts: Counter[torch.dtype] = Counter()
    for t in ckpt.tensors.values():
        if t.is_floating_point():
            counts[t.dtype] += t.numel()
    return counts.most_common(1)[0][0] if counts else None


@dataclass
class FolderArchitecture:
    """How to build a folder's architecture: a factory :func:`build_model` can call."""

    folder: Path
    name: str
    dtype: torch.dtype | None
    trust_remote_code: bool = False
    remote: bool = False

    def __call__(self) -> nn.Module:
        import transformers

        config = transformers.AutoConfig.from_pretrained(self.folder, trust_remote_code=self.trust_remote_code)
        if self.remote:
            from transformers.dynamic_module_utils import get_class_from_dynamic_module

            reference = next(v for v in config.auto_map.values() if str(v).endswith(self.name))
            cls = get_class_from_dynamic_module(reference, self.folder)
        else:
            cls = getattr(transformers, self.name)
        kwargs = {"dtype": self.dtype} if self.dtype is not None else {}
        return cls._from_config(config, **kwargs)

    def describe(self) -> str:
        dtype = f" in {str(self.dtype).removeprefix('torch.')}" if self.dtype is not None else ""
        where = "code from the folder (trusted)" if self.remote else "transformers"
        return f"{self.name} from {self.folder / 'config.json'} through {where}{dtype}"


def _config(ckpt: LoadedCheckpoint) -> tuple[Path, dict] | None:
    path = ckpt.metadata.get("paramedit.config_json")
    if ckpt.format != "hf-folder" or not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelSpecError(f"{path} is not a readable JSON config: {exc}", details=traceback.format_exc()) from exc
    return Path(path), data if isinstance(data, dict) else {}


def folder_architecture(ckpt: LoadedCheckpoint, *, trust_remote_code: bool = False,
                        dtype: torch.dtype | None = None) -> tuple[FolderArchitecture | None, str | None]:
    """(the factory that builds the folder's architecture, None) or (None, why not, in words).

    (None, None) when ``ckpt`` is not a Hugging Face folder with a config at all.
    """
    found = _config(ckpt)
    if found is None:
        return None, None
    config_path, config = found
    folder = config_path.parent
    names = config.get("architectures")
    if not names or not isinstance(names, list) or not isinstance(names[0], str):
        return None, (f"{config_path.name} names no architecture ('architectures' is missing), so the folder "
                      "opened as tensors alone; name the model class as a spec to check it")
    name = names[0]
    try:
        import transformers
    except ImportError:
        return None, (f"{config_path.name} names the architecture {name}; install transformers "
                      "(pip install 'paramedit[hf]') to open the folder with it, for the backward check")
    remote = not hasattr(transformers, name)
    if remote and not config.get("auto_map"):
        return None, (f"{config_path.name} names the architecture {name}, which transformers "
                      f"{transformers.__version__} does not know, so the folder opened as tensors alone; a newer "
                      "transformers may know it")
    if remote and not trust_remote_code:
        return None, (f"{config_path.name} names {name}, whose code comes with the folder (auto_map): running it "
                      "is your decision, so the folder opened as tensors alone; pass --trust-remote-code "
                      "(trust_remote_code=True in Python) to build it")
    return FolderArchitecture(folder, name, dtype or stored_dtype(ckpt), trust_remote_code, remote), None


def remote_code_files(folder: str | Path) -> list[str]:
    """The Python files of ``folder`` that building its architecture would run (its config's
    ``auto_map``, for an architecture transformers does not have), before anything is opened;
    [] when none would run (not a folder, no config, a known architecture, no transformers)."""
    config_path = Path(folder) / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else None
    except (OSError, ValueError):
        return []
    if not isinstance(config, dict) or not isinstance(config.get("auto_map"), dict):
        return []
    names = config.get("architectures")
    try:
        import transformers
    except ImportError:
        return []
    if not names or not isinstance(names, list) or hasattr(transformers, str(names[0])):
        return []
    files: list[str] = []
    for value in config["auto_map"].values():
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, str) and "." in ref:
                module = ref.split("--")[-1].rpartition(".")[0]
                name = module.replace(".", "/") + ".py"
                if name not in files:
                    files.append(name)
    return files

