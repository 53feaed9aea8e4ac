"""What a checkpoint file holds around the tensors paramedit edits, and what a save keeps of it.

A Lightning ``.ckpt`` holds its ``state_dict`` next to the epoch, optimizer states and
hyper-parameters; a training script's file may hold ``model`` and ``ema`` side by side; a
``torch.save(model)`` file is a pickled module and a ``torch.jit.save`` archive is compiled code.
Rewriting such a file as a bare state dict loses what ``load_from_checkpoint``, ``torch.load``
or ``torch.jit.load`` need. :class:`FileLayout` records what was there, so that a save over the
file keeps its structure (other tensor containers and nesting included) or refuses with the
reason, and a save elsewhere says what it leaves out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

__all__ = ["FileLayout", "describe_layout"]

_LIGHTNING_KEYS = ("pytorch-lightning_version", "lightning_version")


def _is_tensor_tree(value: object) -> bool:
    """A tensor, or a mapping whose values are all tensors or such mappings."""
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_tensor_tree(v) for k, v in value.items())
    return False


def _key(path: tuple[str, ...], key: object) -> str:
    return ".".join((*path, str(key)))


@dataclass
class FileLayout:
    """The structure of a checkpoint file beyond its flat tensors.

    ``kind`` is ``"state_dict"`` (a torch or pickle file holding dicts), ``"module"`` (a
    pickled ``nn.Module``), ``"torchscript"``, ``"safetensors"``, ``"sharded"`` (safetensors
    shards), ``"torch-sharded"`` or ``"dcp"``.
    ``root`` is what ``torch.load`` returned (kept for a rewrite of the same structure; its
    tensors are memory-mapped), ``container_path`` the keys down to the state dict.
    """

    kind: str
    root: object | None = None
    container_path: tuple[str, ...] = ()
    non_tensor: list[str] = field(default_factory=list)  # dotted keys whose content is not tensors
    other_tensors: list[str] = field(default_factory=list)  # other tensor containers, kept in place
    module_type: str | None = None
    lightning: bool = False
    fqns: dict[tuple[str, ...], str] = field(default_factory=dict)  # DCP: nested path -> the folder's key

    def rewrite_refusal(self) -> str | None:
        """Why this file cannot be rewritten whole with edited tensors (None: it can)."""
        if self.kind == "torchscript":
            return ("is a TorchScript archive (torch.jit.save): its compiled code and structure cannot be written "
                    "back, and a bare state dict in its place would no longer load with torch.jit.load")
        if self.kind == "module":
            return (f"holds a pickled model object ({self.module_type or 'an nn.Module'}), not a state dict: "
                    "a state dict in its place would no longer load with torch.load as a model")
        if self.kind == "torch-sharded":
            return ("is a sharded set of torch files; paramedit writes sharded sets as safetensors, so it cannot "
                    "rewrite this one in place")
        if self.non_tensor:
            what = "a Lightning checkpoint's" if self.lightning else "its"
            return (f"holds more than tensors ({what} {_few(self.non_tensor)}): a rewrite would lose them")
        return None

    def left_out(self) -> list[str]:
        """What a flat save of the chosen tensors elsewhere does not carry over, in words."""
        out: list[str] = []
        if self.kind == "torchscript":
            out.append("the TorchScript code and structure (the result is a plain state dict)")
        elif self.kind == "module":
            out.append(f"the pickled model object ({self.module_type or 'nn.Module'}); the result is its state dict")
        if self.container_path:
            out.append(f"the nesting under '{'.'.join(self.container_path)}' (the result is a flat state dict)")
        if self.other_tensors:
            out.append(f"other tensors in the file: {_few(self.other_tensors)}")
        if self.non_tensor:
            out.append(f"the file's other content: {_few(self.non_tensor)}")
        if self.lightning and (self.non_tensor or self.container_path):
            out.append("so Lightning's load_from_checkpoint will not accept the result; load its state dict with "
                       "model.load_state_dict(torch.load(OUT)) instead")
        return out

    def rebuild(self, state: Mapping[str, torch.Tensor], original: Mapping[object, object]) -> object:
        """The file's object with the state dict at ``container_path`` replaced by ``state``.

        ``original`` is the state dict as loaded: its ``_metadata`` (module versions that
        ``load_state_dict`` reads) is kept.
        """
        new_state: OrderedDict[str, torch.Tensor] = OrderedDict(state)
        metadata = getattr(original, "_metadata", None)
        if metadata is not None:
            new_state._metadata = metadata  # type: ignore[attr-defined]
        if not self.container_path or not isinstance(self.root, Mapping):
            return new_state
        return _replaced(self.root, self.container_path, new_state)


def _replaced(node: Mapping, path: tuple[str, ...], value: object) -> object:
    copy = type(node)(node) if isinstance(node, (dict, OrderedDict)) else dict(node)
    head, rest = path[0], path[1:]
    copy[head] = value if not rest else _replaced(node[head], rest, value)  # type: ignore[index]
    return copy


def _few(names: list[str], n: int = 6) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", … ({len(names) - n} more)" if len(names) > n else "")


def _walk_siblings(node: Mapping, path: tuple[str, ...], depth: int, layout: FileLayout) -> None:
    """Record what lies beside the path to the container, at every level on the way down."""
    here = path[:depth]
    on_path = path[depth] if depth < len(path) else None
    for key, value in node.items():
        if key == on_path:
            if isinstance(value, Mapping):
                _walk_siblings(value, path, depth + 1, layout)
            continue
        if depth == len(path):  # inside the container itself: its entries
            if not (isinstance(key, str) and isinstance(value, torch.Tensor)):
                layout.non_tensor.append(_key(here, key))
            continue
        if _is_tensor_tree(value):
            layout.other_tensors.append(_key(here, key))
        else:
            layout.non_tensor.append(_key(here, key))


def describe_layout(fmt: str, root: object | None, container_path: tuple[str, ...],
                    module_type: str | None) -> FileLayout:
    """The layout of a file read as ``fmt`` whose object was ``root`` and whose state dict was
    found at ``container_path``."""
    if fmt == "torchscript":
        return FileLayout("torchscript", module_type=module_type)
    if fmt in ("safetensors", "dcp"):
        return FileLayout(fmt)
    if fmt.endswith("-sharded"):
        return FileLayout("sharded")
    if isinstance(root, torch.nn.Module):
        return FileLayout("module", module_type=module_type or f"{type(root).__module__}.{type(root).__qualname__}")
    layout = FileLayout("state_dict", root=root, container_path=container_path)
    if isinstance(root, Mapping):
        layout.lightning = any(k in root for k in _LIGHTNING_KEYS)
        container: object = root
        for key in container_path:
            container = container[key] if isinstance(container, Mapping) else None  # type: ignore[index]
        if isinstance(container, torch.nn.Module):
            layout.kind, layout.module_type = "module", module_type
            return layout
        _walk_siblings(root, container_path, 0, layout)
    return layout
