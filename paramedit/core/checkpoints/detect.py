"""Recognising checkpoint files and folders by what they contain, not only by their names."""

from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from paramedit.core.checkpoints.dcp_reader import DCP_METADATA, is_dcp_metadata
from paramedit.core.checkpoints.pickle_safety import LEGACY_TORCH_MAGIC, read_first_pickle_value
from paramedit.core.errors import CheckpointError

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "HF_WEIGHT_FILES",
    "FolderChoice",
    "ShardIndex",
    "detect_format",
    "folder_save_target",
    "read_index",
    "resolve_folder",
]

# In the order transformers itself prefers them.
HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.bin.index.json",
)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".pth.tar", ".pt.tar")
# Files a training run leaves beside the weights; never the checkpoint the user means.
_NOT_WEIGHTS_PREFIXES = ("optimizer", "scheduler", "scaler", "rng_state", "training_args")

_SAFETENSORS_MAX_HEADER = 100_000_000  # the limit safetensors itself enforces
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_INDEX_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ShardIndex:
    """A parsed ``*.index.json``: tensor name -> shard file, in the index's order."""

    path: Path
    weight_map: dict[str, str]
    metadata: dict[str, str]

    @property
    def shards(self) -> list[str]:
        """Shard file names, unique, in order of first appearance."""
        return list(dict.fromkeys(self.weight_map.values()))


@dataclass(frozen=True)
class FolderChoice:
    """Which file inside a folder is the checkpoint, and why."""

    file: Path
    is_hf: bool
    note: str


def _read_head(path: Path, size: int = 64) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read(size)
    except OSError as exc:
        raise CheckpointError(f"could not read {path}: {exc.strerror or exc}", details=repr(exc)) from exc


def read_index(path: Path) -> ShardIndex:
    """Parse a sharded-checkpoint index (``{"weight_map": {name: shard}}``)."""
    path = Path(path)
    try:
        if path.stat().st_size > _INDEX_MAX_BYTES:
            raise CheckpointError(f"{path} is too large to be a shard index ({path.stat().st_size} bytes)")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"could not read {path}: {exc.strerror or exc}", details=repr(exc)) from exc
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path} is not a JSON shard index: it is not UTF-8 text", details=repr(exc)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "a shard index must be a JSON object with a 'weight_map'",
            details=repr(exc),
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("weight_map"), dict):
        raise CheckpointError(
            f"{path} is JSON but not a shard index: it needs a 'weight_map' object mapping tensor names to shard files"
        )
    weight_map = data["weight_map"]
    bad = [k for k, v in weight_map.items() if not isinstance(v, str) or not v]
    if bad:
        raise CheckpointError(f"{path}: 'weight_map' entries must name a shard file; these do not: {', '.join(bad[:5])}")
    raw_meta = data.get("metadata") or {}
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw_meta.items()} if isinstance(
        raw_meta, dict
    ) else {}
    return ShardIndex(path=path, weight_map=dict(weight_map), metadata=metadata)


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} starts like a zip archive (the torch.save format) but its directory is missing or damaged: "
            "the file is probably truncated or corrupted",
            details=repr(exc),
        ) from exc
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names):
        return "torch"
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    raise CheckpointError(
        f"{path} is a zip archive but not a torch.save checkpoint (no data.pkl inside; it holds: {shown or 'nothing'})"
    )


def _safetensors_header_length(head: bytes) -> int | None:
    if len(head) < 9 or head[8:9] != b"{":
        return None
    return struct.unpack("<Q", head[:8])[0]


def _valid_safetensors_header(path: Path, length: int, size: int) -> bool:
    if length < 2 or length > _SAFETENSORS_MAX_HEADER or 8 + length > size:
        return False
    try:
        with open(path, "rb") as stream:
            stream.seek(8)
            header = json.loads(stream.read(length).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(header, dict)


def _index_kind(index: ShardIndex) -> str:
    shards = index.shards
    if shards and all(s.endswith(".safetensors") for s in shards):
        return "safetensors-sharded"
    return "torch-sharded"


def detect_format(path: Path) -> str:
    """Say what kind of checkpoint ``path`` is, from its content as much as its name.

    Returns one of ``"torch"`` (torch.save zip archive), ``"torch-legacy"`` (pre-1.6 pickle
    format), ``"torchscript"`` (torch.jit.save archive), ``"pickle"`` (a plain Python pickle),
    ``"safetensors"``, ``"safetensors-sharded"`` / ``"torch-sharded"`` (a ``*.index.json``),
    ``"hf-folder"`` (a folder holding Hugging Face weight files), ``"dcp"`` (a
    ``torch.distributed.checkpoint`` folder, or its ``.metadata`` file) or ``"folder"`` (any other
    folder). Raises :class:`CheckpointError` for a missing, empty, unreadable or unrecognised path.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such file or folder: {path}")
    if path.is_dir():
        if any((path / name).is_file() for name in HF_WEIGHT_FILES):
            return "hf-folder"
        dcp_metadata = path / DCP_METADATA
        if dcp_metadata.is_file() and is_dcp_metadata(_read_head(dcp_metadata, 256)):
            return "dcp"
        return "folder"
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file or folder")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"could not read {path}: {exc.strerror or exc}", details=repr(exc)) from exc
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the save that wrote it probably failed")
    head = _read_head(path)
    if head.startswith(_ZIP_MAGICS):
        return _zip_kind(path)
    st_length = _safetensors_header_length(head)
    if st_length is not None and _valid_safetensors_header(path, st_length, size):
        return "safetensors"
    if head[:1] == b"\x80" and is_dcp_metadata(_read_head(path, 256)):
        return "dcp"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        complete, value = read_first_pickle_value(head)
        if value == LEGACY_TORCH_MAGIC:
            return "torch-legacy"
        if not complete and size <= len(head):
            raise CheckpointError(f"{path} is a pickle cut off after {size} bytes: the file is truncated")
        return "pickle"
    if st_length is not None:
        if 8 + st_length > size:
            raise CheckpointError(
                f"{path} looks like a safetensors file, but its header length ({st_length} bytes) points past "
                f"the end of the file ({size} bytes): the file is truncated or corrupted"
            )
        raise CheckpointError(f"{path} looks like a safetensors file, but its header is not valid JSON")
    if path.suffix == ".json" or head.lstrip()[:1] in (b"{", b"["):
        return _index_kind(read_index(path))
    other = _other_format(path, head)
    if other:
        raise CheckpointError(f"{path} is {other[0]}, not a PyTorch checkpoint: paramedit edits torch.save files, "
                              f"safetensors, sharded sets and Hugging Face folders; {other[1]}")
    raise CheckpointError(
        f"{path} is not a checkpoint paramedit can read: it is not a torch.save file (zip or legacy pickle), "
        f"a safetensors file, or a shard index (it begins with bytes {head[:8].hex(' ')}"
        + (f" and is only {size} bytes long)" if size < 16 else ")")
    )


def _other_format(path: Path, head: bytes) -> tuple[str, str] | None:
    """(what, what to do) for a well-known non-PyTorch model file, by its magic bytes or name."""
    suffix = path.suffix.lower()
    if head.startswith(b"GGUF"):
        return "a GGUF file (llama.cpp)", "open the PyTorch or safetensors weights it was converted from"
    if head.startswith(b"\x89HDF\r\n\x1a\n") or suffix in (".h5", ".keras"):
        return "an HDF5 / Keras file", "open the model's PyTorch weights instead"
    if suffix == ".onnx":
        return ("an ONNX model (an exported graph, its weights stored as initializers)",
                "edit its initializers with the onnx package, or open the PyTorch checkpoint it was exported from")
    if suffix == ".tflite" or head[4:8] == b"TFL3":
        return "a TensorFlow Lite model", "open the model's PyTorch weights instead"
    if suffix == ".msgpack":
        return "a Flax (msgpack) checkpoint", "transformers converts it with from_pretrained(..., from_flax=True)"
    return None


def _candidates(folder: Path, set_aside: list[str]) -> list[Path]:
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError as exc:
        raise CheckpointError(f"could not list {folder}: {exc.strerror or exc}", details=repr(exc)) from exc
    indexes = [p for p in files if p.name.endswith(".index.json")]
    in_index: set[str] = set()
    for index_path in indexes:
        try:
            in_index.update(read_index(index_path).shards)
        except CheckpointError:
            continue  # a broken index is still a candidate; loading it reports the problem
    found = []
    for p in files:
        name = p.name.lower()
        if not (name.endswith(CHECKPOINT_SUFFIXES) or name.endswith(".index.json")) or p.name in in_index:
            continue
        if name.startswith(_NOT_WEIGHTS_PREFIXES):
            set_aside.append(p.name)
        else:
            found.append(p)
    return found


def resolve_folder(folder: Path) -> FolderChoice:
    """Pick the checkpoint inside ``folder``: Hugging Face weight files first, else the only candidate."""
    present = [name for name in HF_WEIGHT_FILES if (folder / name).is_file()]
    if present:
        note = f"used {present[0]} from the Hugging Face folder {folder}"
        if len(present) > 1:
            note += f" (also present, not read: {', '.join(present[1:])})"
        return FolderChoice(file=folder / present[0], is_hf=True, note=note)
    set_aside: list[str] = []
    found = _candidates(folder, set_aside)
    if len(found) == 1:
        return FolderChoice(file=found[0], is_hf=False, note=f"used {found[0].name}, the only checkpoint in {folder}")
    if not found:
        looked = ", ".join(f"*{s}" for s in CHECKPOINT_SUFFIXES)
        aside = f" (training-state files are not weights: {', '.join(set_aside)})" if set_aside else ""
        raise CheckpointError(
            f"no checkpoint found in {folder}; looked for {', '.join(HF_WEIGHT_FILES[:4])}, {looked} "
            f"and *.index.json{aside}"
        )
    raise CheckpointError(
        f"{folder} holds several checkpoints; open one of them directly: {', '.join(p.name for p in found)}"
    )


def folder_save_target(target: Path) -> Path:
    """The file a save into folder ``target`` must write: the one a loader reads from there.

    Saving into a ``save_pretrained`` folder that holds ``model.safetensors`` (or
    ``pytorch_model.bin``) replaces that file, as ``save_pretrained`` would; writing a sharded
    set beside it would leave the edit where transformers (and paramedit) never look. Any other
    folder, one with an index, or one with no checkpoint yet gets a set (``target`` itself is
    returned); so does anything that is not a folder.
    """
    if not target.is_dir():
        return target
    try:
        choice = resolve_folder(target)
    except CheckpointError:
        return target  # nothing to read there yet (or several candidates): a sharded set
    # Only a Hugging Face folder's own weights file: any other checkpoint in the folder (a
    # training run's checkpoint.pt with its optimizer state) is not ours to replace.
    if not choice.is_hf or choice.file.name.endswith(".index.json"):
        return target
    return choice.file
