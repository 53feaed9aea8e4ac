"""Pickles that would run code are refused (and never run); damaged files are clear errors."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from paramedit.core.checkpoints.formats import detect_format, load_checkpoint, unsafe_globals
from paramedit.core.errors import CheckpointError, UntrustedCheckpointError

HERE = __name__  # the module the custom classes below are pickled under


class RunConfig:
    """A custom object people store next to their weights."""

    def __init__(self, width: int) -> None:
        self.width = width


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)


class MakesMarker:
    """Unpickling this creates a folder: the stand-in for any code a pickle can run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return dict(Net().state_dict())


def expect_refused(path: Path, *needles: str) -> UntrustedCheckpointError:
    with pytest.raises(UntrustedCheckpointError) as info:
        load_checkpoint(path)
    err = info.value
    for needle in needles:
        assert any(needle in g for g in err.globals), (needle, err.globals)
        assert needle in err.message
    assert "--trust" in err.message
    return err


# ---------------------------------------------------------------- refusing code


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4:UserWarning")
@pytest.mark.parametrize("save", ["zip", "legacy", "protocol4", "plain-pickle"])
def test_reduce_payload_is_refused_and_never_runs(tmp_path: Path, save: str) -> None:
    marker = tmp_path / "payload-ran"
    obj = {**state(), "evil": MakesMarker(marker)}
    path = tmp_path / "evil.pt"
    if save == "zip":
        torch.save(obj, path)
    elif save == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    elif save == "protocol4":
        torch.save(obj, path, pickle_protocol=4)  # STACK_GLOBAL: names come from the stack
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f)

    err = expect_refused(path, "mkdir")
    assert any("mkdir" in g for g in unsafe_globals(path))

    assert "needs more than tensors" in err.message or "plain Python pickle" in err.message
    assert "run code" in err.message
    assert not marker.exists()


def test_custom_class_is_refused_then_loads_when_trusted(tmp_path: Path) -> None:
    path = tmp_path / "with_config.pt"
    torch.save({"model": state(), "config": RunConfig(width=4), "epoch": 2}, path)

    err = expect_refused(path, f"{HERE}.RunConfig")
    assert err.globals == [f"{HERE}.RunConfig"]
    assert "needs more than tensors" in err.message

    ckpt = load_checkpoint(path, trust=True)
    assert ckpt.trusted and ckpt.container_key == "model"
    assert set(ckpt.tensors) == set(state())


def test_trust_is_not_used_when_the_file_does_not_need_it(tmp_path: Path) -> None:
    torch.save(state(), tmp_path / "plain.pt")

    ckpt = load_checkpoint(tmp_path / "plain.pt", trust=True)

    assert not ckpt.trusted and ckpt.mmapped


def test_whole_model_object_is_refused_then_gives_its_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = Net()
    path = tmp_path / "whole.pt"
    torch.save(net, path)

    expect_refused(path, f"{HERE}.Net")
    ckpt = load_checkpoint(path, trust=True)

    assert ckpt.trusted and ckpt.container_key is None
    assert any("whole model object" in n for n in ckpt.notes)
    for name, value in net.state_dict().items():
        assert torch.equal(ckpt.tensors[name], value)


def test_trusted_load_of_missing_class_says_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "gone.pt"
    torch.save({"w": torch.ones(1), "cfg": RunConfig(1)}, path)
    data = path.read_bytes().replace(b"RunConfig", b"GoneConfg")  # same length: zip stays valid
    path.write_bytes(data)

    with pytest.raises(CheckpointError, match="cannot be found here") as info:
        load_checkpoint(path, trust=True)
    assert info.value.details


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4:UserWarning")
def test_protocol4_plain_tensors_need_trust_and_say_why(tmp_path: Path) -> None:
    path = tmp_path / "p4.pt"
    torch.save(state(), path, pickle_protocol=4)  # torch's safe loader only reads protocol 2

    with pytest.raises(UntrustedCheckpointError, match="cannot be read by torch's safe loader") as info:
        load_checkpoint(path)
    assert info.value.globals == []
    assert "Unsupported operand" in info.value.message
    assert set(load_checkpoint(path, trust=True).tensors) == set(state())


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_archive_needs_trust(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.jit.script(Net())
    path = tmp_path / "scripted.pt"
    net.save(str(path))

    assert detect_format(path) == "torchscript"
    with pytest.raises(UntrustedCheckpointError, match="TorchScript"):
        load_checkpoint(path)
    ckpt = load_checkpoint(path, trust=True)
    assert ckpt.format == "torchscript" and set(ckpt.tensors) == {"fc.weight", "fc.bias"}


def test_safe_files_have_no_unsafe_globals(tmp_path: Path) -> None:
    torch.save(state(), tmp_path / "a.pt")
    torch.save(state(), tmp_path / "b.pt", _use_new_zipfile_serialization=False)
    save_file(state(), tmp_path / "c.safetensors")
    for name in ("a.pt", "b.pt", "c.safetensors"):
        assert unsafe_globals(tmp_path / name) == []


# ---------------------------------------------------------------- damaged input


def expect_damaged(path: Path, match: str | None = None) -> CheckpointError:
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    assert type(info.value) is CheckpointError, f"{path.name}: {info.value.message}"
    assert str(path) in info.value.message
    return info.value


def test_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file or folder"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    expect_damaged(tmp_path / "empty.pt", "is empty")


@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors"])
def test_truncated_files_are_errors(tmp_path: Path, kind: str) -> None:
    full = tmp_path / "full"
    if kind == "zip":
        torch.save(state(), full)
    elif kind == "legacy":
        torch.save(state(), full, _use_new_zipfile_serialization=False)
    else:
        save_file(state(), full)
    data = full.read_bytes()
    for cut in sorted({1, 5, 9, 12, 20, 40, 100, len(data) // 2, len(data) - 20, len(data) - 1}):
        path = tmp_path / f"cut{cut}.bin"
        path.write_bytes(data[:cut])
        err = expect_damaged(path)
        assert "Traceback" not in err.message
        if kind == "zip" and cut > 4:
            assert err.details  # the original error, for --verbose / the Details button


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.pt"
    path.write_bytes(b"\x13\x37" + np.random.default_rng(0).bytes(4096))
    expect_damaged(path, "not a checkpoint paramedit can read")


def test_zip_that_is_not_a_torch_archive(tmp_path: Path) -> None:
    path = tmp_path / "photos.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("holiday/readme.txt", "not weights")
    expect_damaged(path, "not a torch.save checkpoint")


def test_safetensors_header_length_past_the_end(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    header = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    path.write_bytes(struct.pack("<Q", 10_000) + header + b"\0\0\0\0")
    expect_damaged(path, "header length .* points past the end")


def test_shard_index_problems(tmp_path: Path) -> None:
    save_file({"a": torch.ones(2)}, tmp_path / "model-00001-of-00002.safetensors")
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(CheckpointError, match=r"shard model-00002-of-00002\.safetensors .* index .*index\.json"):
        load_checkpoint(index)

    index.write_text('{"weight_map": {"a": "model-00001-of-00002.safetensors",')
    expect_damaged(index, "not valid JSON")
    index.write_text('{"shards": []}')
    expect_damaged(index, "weight_map")
    index.write_text(json.dumps({"weight_map": {"zz": "model-00001-of-00002.safetensors"}}))
    expect_damaged(index, "says zz is in model-00001-of-00002.safetensors")


def test_untrusted_shard_is_refused_by_name(tmp_path: Path) -> None:
    torch.save({"a": torch.ones(2)}, tmp_path / "pytorch_model-00001-of-00002.bin")
    torch.save({"b": torch.ones(2), "cfg": RunConfig(2)}, tmp_path / "pytorch_model-00002-of-00002.bin")
    index = tmp_path / "pytorch_model.bin.index.json"
    index.write_text(json.dumps({"weight_map": {
        "a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"}}))

    with pytest.raises(UntrustedCheckpointError, match=r"pytorch_model-00002-of-00002\.bin") as info:
        load_checkpoint(tmp_path)
    assert info.value.globals == [f"{HERE}.RunConfig"]
    assert unsafe_globals(index) == [f"{HERE}.RunConfig"]
    assert set(load_checkpoint(index, trust=True).tensors) == {"a", "b"}


def test_json_that_is_not_an_index(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hidden_size": 32}')
    expect_damaged(tmp_path / "config.json", "not a shard index")
