"""Saving a sharded safetensors set writes only the shards whose tensors changed (issue 4).

Sets are made by ``huggingface_hub.save_torch_state_dict``, the tool that writes real ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from paramedit.core.checkpoints.detect import read_index
from paramedit.core.checkpoints.formats import LoadedCheckpoint, load_checkpoint
from paramedit.core.checkpoints.saving import stale_temp_files
from paramedit.core.checkpoints.sharded_saving import is_sharded_safetensors, save_sharded
from paramedit.core.errors import SaveError

hub = pytest.importorskip("huggingface_hub")


class TiedStack(nn.Module):
    """An embedding tied to the head, with layers big enough to land in separate shards."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(64, 16)
        self.layers = nn.ModuleList(nn.Linear(16, 16) for _ in range(4))
        self.head = nn.Linear(16, 64, bias=False)
        self.head.weight = self.emb.weight


def make_set(folder: Path, *, wrap: str = "") -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state = TiedStack().state_dict()
    original = {k: v.clone() for k, v in state.items()}
    folder.mkdir()
    hub.save_torch_state_dict({wrap + k: v for k, v in state.items()}, folder, max_shard_size=2000)
    return original


def canonical(ckpt: LoadedCheckpoint) -> dict[str, torch.Tensor]:
    return {n: t for n, t in ckpt.tensors.items() if n not in ckpt.aliases}


def stats(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.safetensors")}


def shard_of(folder: Path, name: str) -> str:
    return read_index(folder / "model.safetensors.index.json").weight_map[name]


def test_saving_over_the_set_rewrites_only_the_changed_shard(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    original = make_set(folder)
    ckpt = load_checkpoint(folder)
    assert is_sharded_safetensors(ckpt) and len(stats(folder)) >= 3
    edited = shard_of(folder, "layers.2.weight")
    neighbour = next((n for n in original if n != "layers.2.weight" and shard_of(folder, n) == edited), None)
    before = stats(folder)
    ckpt.tensors["layers.2.weight"][0, 0].fill_(42.0)

    written = save_sharded(canonical(ckpt), ckpt.aliases, folder, source=ckpt, changed={"layers.2.weight"})

    after = stats(folder)
    assert written == [folder / edited, folder / "model.safetensors.index.json"]
    assert after[edited][0] != before[edited][0]
    assert {k: v for k, v in after.items() if k != edited} == {k: v for k, v in before.items() if k != edited}
    assert float(load_file(str(folder / edited))["layers.2.weight"][0, 0]) == 42.0
    reloaded = load_checkpoint(folder)
    assert reloaded.aliases == {"head.weight": "emb.weight"} and set(reloaded.tensors) == set(original)
    for name, value in original.items():
        expected = value.clone()
        if name == "layers.2.weight":
            expected[0, 0] = 42.0
        assert torch.equal(reloaded.tensors[name], expected), name
    if neighbour is not None:  # the replaced file's old inode is still mapped and readable
        assert torch.equal(ckpt.tensors[neighbour], original[neighbour])
    assert not stale_temp_files(folder)


def test_saving_elsewhere_links_the_untouched_shards(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    original = make_set(folder)
    ckpt = load_checkpoint(folder / "model.safetensors.index.json")
    edited = shard_of(folder, "emb.weight")
    with torch.no_grad():
        ckpt.tensors["emb.weight"][3].fill_(-1.0)
    out = tmp_path / "out"

    written = save_sharded(canonical(ckpt), ckpt.aliases, out, source=ckpt, changed={"head.weight"})  # an alias

    assert written[-1] == out / "model.safetensors.index.json" and set(stats(out)) == set(stats(folder))
    for name, (inode, _) in stats(folder).items():
        copy = out / name
        if name == edited:
            assert copy.stat().st_ino != inode
        else:
            assert copy.stat().st_ino == inode or copy.read_bytes() == (folder / name).read_bytes()
    reloaded = load_checkpoint(out)
    assert torch.equal(reloaded.tensors["head.weight"][3], torch.full((16,), -1.0))
    assert torch.equal(load_checkpoint(folder).tensors["emb.weight"], original["emb.weight"])  # source untouched


def test_a_changed_dtype_or_a_dropped_name_rewrites_the_shard(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    make_set(folder)
    ckpt = load_checkpoint(folder)
    tensors = canonical(ckpt)
    tensors["layers.0.bias"] = tensors["layers.0.bias"].double()
    del tensors["layers.3.bias"]
    before = stats(folder)

    save_sharded(tensors, ckpt.aliases, folder, source=ckpt, changed=set())

    after = stats(folder)
    rewritten = {shard_of(folder, "layers.0.bias"), shard_of(folder, "layers.3.weight")}
    assert all(after[s][0] != before[s][0] for s in rewritten)
    reloaded = load_checkpoint(folder)
    assert reloaded.tensors["layers.0.bias"].dtype == torch.float64 and "layers.3.bias" not in reloaded.tensors


def test_a_shard_replaced_on_disk_after_loading_is_rewritten_from_what_was_loaded(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    original = make_set(folder)
    ckpt = load_checkpoint(folder)
    shard = folder / shard_of(folder, "layers.1.weight")
    tampered = {k: torch.zeros_like(v) for k, v in load_file(str(shard)).items()}
    save_file(tampered, str(shard), metadata={"format": "pt"})  # another program rewrote it

    written = save_sharded(canonical(ckpt), ckpt.aliases, folder, source=ckpt, changed=set())

    assert shard in written
    assert torch.equal(load_checkpoint(folder).tensors["layers.1.weight"], original["layers.1.weight"])


def test_a_stripped_prefix_is_kept_in_the_files(tmp_path: Path) -> None:
    folder = tmp_path / "ddp"
    original = make_set(folder, wrap="module.")
    ckpt = load_checkpoint(folder)
    assert ckpt.stripped_prefix == "module."
    ckpt.tensors["layers.1.bias"].zero_()

    save_sharded(canonical(ckpt), ckpt.aliases, folder, source=ckpt, changed={"layers.1.bias"})

    index = read_index(folder / "model.safetensors.index.json")
    assert all(k.startswith("module.") for k in index.weight_map)
    reloaded = load_checkpoint(folder)
    assert reloaded.stripped_prefix == "module." and set(reloaded.tensors) == set(original)
    assert not reloaded.tensors["layers.1.bias"].any()


def test_without_a_sharded_source_tensors_are_split_like_huggingface(tmp_path: Path) -> None:
    tensors = {f"block{i}.weight": torch.full((25, 20), float(i)) for i in range(5)}  # 2000 bytes each
    target = tmp_path / "fresh" / "weights.safetensors.index.json"
    target.parent.mkdir()

    written = save_sharded(tensors, {"tied": "block0.weight"}, target, source=None, changed=set(), max_shard_bytes=4500)

    names = [p.name for p in written]
    assert names == [f"weights-{i:05d}-of-00003.safetensors" for i in (1, 2, 3)] + [target.name]
    index = read_index(target)
    assert index.weight_map["block4.weight"] == "weights-00003-of-00003.safetensors"
    assert index.metadata["total_size"] == "10000"
    reloaded = load_checkpoint(target)
    assert reloaded.aliases == {"tied": "block0.weight"}
    for name, value in tensors.items():
        assert torch.equal(reloaded.tensors[name], value)


def test_a_second_index_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    make_set(folder)
    ckpt = load_checkpoint(folder)
    with pytest.raises(SaveError, match="second index"):
        save_sharded(canonical(ckpt), ckpt.aliases, folder / "other.safetensors.index.json", source=ckpt,
                     changed={"emb.weight"})  # fmt: skip


def test_a_failed_shard_write_leaves_the_old_set_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "set"
    make_set(folder)
    ckpt = load_checkpoint(folder)
    index_before = (folder / "model.safetensors.index.json").read_bytes()
    before = stats(folder)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", disk_full)
    with pytest.raises(SaveError, match="No space left"):
        save_sharded(canonical(ckpt), ckpt.aliases, folder, source=ckpt, changed={"layers.0.weight"})

    assert (folder / "model.safetensors.index.json").read_bytes() == index_before
    assert stats(folder) == before and not stale_temp_files(folder)


def test_hard_link_failure_falls_back_to_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "set"
    make_set(folder)
    ckpt = load_checkpoint(folder)

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    out = tmp_path / "out"
    save_sharded(canonical(ckpt), ckpt.aliases, out, source=ckpt, changed=set())

    for name in stats(folder):
        assert (out / name).read_bytes() == (folder / name).read_bytes()
        assert (out / name).stat().st_ino != (folder / name).stat().st_ino
    assert not stale_temp_files(out)


def test_session_save_to_sharded_folder_rewrites_only_changed_shard(tmp_path):
    """Issue 4 through the public API: Session.save on the folder it was opened from."""
    import os

    from huggingface_hub import save_torch_state_dict

    import paramedit

    state = {f"layer{i}.weight": torch.randn(64, 64) for i in range(4)}
    folder = tmp_path / "sharded"
    folder.mkdir()
    save_torch_state_dict(state, folder, max_shard_size="20KB")
    shards = sorted(folder.glob("*.safetensors"))
    assert len(shards) >= 3
    before = {p.name: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in shards}
    s = paramedit.open_session(None, folder)
    s.stage("layer2.weight", "[0, 0]", 5.0)
    s.commit()
    s.save(folder)
    after = {p.name: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in sorted(folder.glob("*.safetensors"))}
    changed = [name for name in before if before[name] != after[name]]
    assert len(changed) == 1
    reopened = paramedit.open_session(None, folder)
    assert reopened.tensor("layer2.weight")[0, 0].item() == 5.0
    assert torch.equal(reopened.tensor("layer0.weight"), state["layer0.weight"])
    assert s.changed_count("layer2.weight") == 1
