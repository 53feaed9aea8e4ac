"""What Save As offers first: the format the session was opened from, in the folder it came from.

A ``.pt`` file saves as ``.pt``, a ``.safetensors`` file (or a sharded safetensors set) as
``.safetensors``, and a Hugging Face or ``torch.distributed.checkpoint`` folder as a new folder
beside it (core writes a complete folder when the name has no extension). Pure functions: the
dialog in :mod:`paramedit.qt.prompts` and the tests use the same answers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from paramedit.demo import demo_checkpoint

if TYPE_CHECKING:
    from paramedit.core.checkpoints.formats import LoadedCheckpoint

__all__ = ["FILTERS", "TORCH_SUFFIXES", "complete_save_path", "save_default", "save_filters"]

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
FILTERS = {
    "safetensors": "safetensors (*.safetensors)",
    "torch": "PyTorch (*.pt *.pth *.bin *.ckpt)",
    "folder": "A new folder like the one opened (*)",
}
#: Formats whose checkpoint is a folder that core saves again as a new folder of the same kind.
_FOLDER_FORMATS = ("hf-folder", "dcp")


def _kind(name: str) -> str:
    """``"folder"`` for a name without extension (core's rule for a new folder), else the file kind."""
    suffix = Path(name).suffix.lower()
    if not suffix:
        return "folder"
    return "safetensors" if suffix == ".safetensors" else "torch"


def save_default(checkpoint: LoadedCheckpoint | None, fallback_folder: str) -> tuple[str, str]:
    """``(folder, suggested name)`` for Save As: beside the opened checkpoint, in its format.

    ``fallback_folder`` is used when there is no checkpoint, for the bundled demo (whose folder
    is inside the installed package), and when the checkpoint's folder cannot be written.
    """
    if checkpoint is None:
        return fallback_folder, "model.edited.safetensors"
    source = Path(checkpoint.path)
    if checkpoint.format in _FOLDER_FORMATS or source.is_dir():
        folder = source if source.is_dir() else source.parent  # a DCP opened by its .metadata file
        where = folder.parent
        if checkpoint.format in _FOLDER_FORMATS:
            name = f"{folder.name}-edited"
        else:  # any other folder holds one checkpoint file: a second one beside it would make two
            name = f"{folder.name.split('.')[0]}.edited{_file_suffix(checkpoint.format, source)}"
    else:
        where, name = source.parent, f"{source.name.split('.')[0]}.edited{_file_suffix(checkpoint.format, source)}"
    if _is_demo(source) or not os.access(where, os.W_OK):
        where = Path(fallback_folder)
    return str(where), name


def _file_suffix(fmt: str, source: Path) -> str:
    if fmt.startswith("safetensors"):
        return ".safetensors"
    suffix = source.suffix.lower()
    return suffix if suffix in TORCH_SUFFIXES else ".pt"


def _is_demo(source: Path) -> bool:
    try:
        return source.resolve() == demo_checkpoint().resolve()
    except OSError:
        return False


def save_filters(suggested: str) -> list[str]:
    """The dialog's name filters, the one that fits ``suggested`` first (and selected)."""
    first = _kind(suggested)
    kinds = [first] + [k for k in ("safetensors", "torch") if k != first]
    return [FILTERS[k] for k in kinds]


def complete_save_path(path: str, chosen_filter: str) -> str:
    """The path typed in the dialog, with the chosen filter's extension when it has none."""
    if not path or path.endswith((".safetensors", *TORCH_SUFFIXES)) or chosen_filter == FILTERS["folder"]:
        return path
    return path + (".pt" if chosen_filter == FILTERS["torch"] else ".safetensors")
