"""torch.distributed.checkpoint folders, written by ``dcp.save`` itself, open like any checkpoint.

Issue 4 ("Beyond one machine"): read DCP through torch's own reader, on one process, without a
process group, and never run code from a downloaded folder's pickled ``.metadata`` unasked.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from paramedit.core.checkpoints.formats import detect_format, load_checkpoint, unsafe_globals
from paramedit.core.errors import CheckpointError, UntrustedCheckpointError

dcp = pytest.importorskip("torch.distributed.checkpoint")


def dcp_save(state: dict, folder: Path) -> Path:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save(state, checkpoint_id=folder)
    return folder


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 4), nn.LayerNorm(4), nn.Linear(4, 2, bias=False))


def trained(model: nn.Module) -> torch.optim.Optimizer:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(3, 6)).sum().backward()
    optimizer.step()
    return optimizer


def test_flat_state_dict_loads_tensor_for_tensor(tmp_path: Path) -> None:
    model = small_model()
    state = {**model.state_dict(), "extra.half": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)}
    folder = dcp_save(state, tmp_path / "ckpt")

    ckpt = load_checkpoint(folder)

    assert detect_format(folder) == "dcp" and ckpt.format == "dcp"
    assert ckpt.container_key is None and not ckpt.mmapped and not ckpt.trusted
    assert list(ckpt.tensors) == list(state)
    for name, value in state.items():
        assert ckpt.tensors[name].dtype == value.dtype and torch.equal(ckpt.tensors[name], value), name
    assert folder / ".metadata" in ckpt.files and any(f.suffix == ".distcp" for f in ckpt.files)
    assert unsafe_globals(folder) == []


def test_nested_model_and_optimizer_picks_the_model(tmp_path: Path) -> None:
    model = small_model()
    optimizer = trained(model)
    folder = dcp_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, tmp_path / "run")

    ckpt = load_checkpoint(folder)

    assert ckpt.container_key == "model"
    assert list(ckpt.tensors) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(ckpt.tensors[name], value), name
    assert any("non-tensor" in n for n in ckpt.notes) and any("epoch" in n for n in ckpt.notes)
    moments = load_checkpoint(folder, container_key="optimizer.state.0")
    assert torch.equal(moments.tensors["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_the_metadata_file_itself_opens_its_folder(tmp_path: Path) -> None:
    folder = dcp_save(small_model().state_dict(), tmp_path / "ckpt")
    assert detect_format(folder / ".metadata") == "dcp"
    assert list(load_checkpoint(folder / ".metadata").tensors) == list(small_model().state_dict())


def test_a_hidden_metadata_file_that_is_not_dcp_is_just_a_folder(tmp_path: Path) -> None:
    (tmp_path / ".metadata").write_bytes(pickle.dumps({"a": 1}))
    assert detect_format(tmp_path) == "folder"


def test_a_tensor_saved_in_chunks_by_two_ranks_is_reassembled(tmp_path: Path) -> None:
    """The layout a 2-rank FSDP/DTensor save writes: one tensor, two chunks in two rank files.

    Each rank's chunk is written by dcp.save; the joint metadata is what the coordinator would
    gather. (A real 2-process gloo DTensor save reads back the same way; it is too slow for here.)
    """
    from torch.distributed.checkpoint.metadata import (
        ChunkStorageMetadata,
        Metadata,
        MetadataIndex,
        TensorStorageMetadata,
    )

    full = torch.randn(10, 6)
    halves = [dcp_save({"embed": part.clone()}, tmp_path / f"rank{r}") for r, part in enumerate(full.split(5))]
    folder = tmp_path / "ckpt"
    folder.mkdir()
    chunks, storage = [], {}
    for rank, half in enumerate(halves):
        md = pickle.loads((half / ".metadata").read_bytes())
        (folder / f"__{rank}_0.distcp").write_bytes((half / "__0_0.distcp").read_bytes())
        offsets = torch.Size([5 * rank, 0])
        chunks.append(ChunkStorageMetadata(offsets=offsets, sizes=torch.Size([5, 6])))
        (info,) = md.storage_data.values()
        info.relative_path = f"__{rank}_0.distcp"
        storage[MetadataIndex("embed", offsets)] = info
    properties = md.state_dict_metadata["embed"].properties
    joint = Metadata({"embed": TensorStorageMetadata(properties, torch.Size([10, 6]), chunks)},
                     planner_data={"embed": ("embed",)}, storage_data=storage, version=md.version)  # fmt: skip
    (folder / ".metadata").write_bytes(pickle.dumps(joint))

    ckpt = load_checkpoint(folder)

    assert torch.equal(ckpt.tensors["embed"], full)
    assert [f.name for f in ckpt.files] == [".metadata", "__0_0.distcp", "__1_0.distcp"]


class _Marker:
    """Unpickling this creates a file: stands in for any code a malicious pickle would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def poison(folder: Path, marker: Path) -> None:
    metadata_path = folder / ".metadata"
    metadata = pickle.loads(metadata_path.read_bytes())  # our own file, written by dcp.save above
    metadata.planner_data = {"x": _Marker(marker)}
    metadata_path.write_bytes(pickle.dumps(metadata))


def test_metadata_asking_for_code_is_refused_unless_trusted(tmp_path: Path) -> None:
    model = small_model()
    folder = dcp_save(model.state_dict(), tmp_path / "ckpt")
    marker = tmp_path / "ran"
    poison(folder, marker)

    opener = f"{open.__module__}.open"  # io.open: what pickle records for the builtin
    with pytest.raises(UntrustedCheckpointError, match=rf"It asks for: {opener}\.") as refused:
        load_checkpoint(folder)
    assert refused.value.globals == [opener]
    assert unsafe_globals(folder) == [opener]
    assert not marker.exists()

    ckpt = load_checkpoint(folder, trust=True)
    assert ckpt.trusted and marker.exists()
    assert torch.equal(ckpt.tensors["0.weight"], model.state_dict()["0.weight"])


def test_missing_data_file_is_named(tmp_path: Path) -> None:
    folder = dcp_save(small_model().state_dict(), tmp_path / "ckpt")
    data = next(folder.glob("*.distcp"))
    data.unlink()
    with pytest.raises(CheckpointError, match=rf"data file {data.name} .* is missing"):
        load_checkpoint(folder)


def test_data_path_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = dcp_save(small_model().state_dict(), tmp_path / "ckpt")
    metadata = pickle.loads((folder / ".metadata").read_bytes())
    for info in metadata.storage_data.values():
        info.relative_path = "../elsewhere.distcp"
    (folder / ".metadata").write_bytes(pickle.dumps(metadata))
    with pytest.raises(CheckpointError, match="outside the folder"):
        load_checkpoint(folder)


def test_truncated_metadata_is_a_checkpoint_error(tmp_path: Path) -> None:
    folder = dcp_save(small_model().state_dict(), tmp_path / "ckpt")
    raw = (folder / ".metadata").read_bytes()
    (folder / ".metadata").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(folder)


def test_truncated_data_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    folder = dcp_save(small_model().state_dict(), tmp_path / "ckpt")
    data = next(folder.glob("*.distcp"))
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"could not be read by torch\.distributed\.checkpoint"):
        load_checkpoint(folder)


def _torchrun(*args: str) -> None:
    import subprocess
    import sys

    job = Path(__file__).resolve().parents[1] / "model_jobs" / "dcp_job.py"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                             str(job), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_a_two_process_job_resumes_from_the_folder_apply_edited(tmp_path):
    """Issue 11: DTensor shards saved by 2 processes (gloo), an edit log applied in place, then loaded by
    2 processes: the edited region is there, the rest and the job's step are as saved, and only the
    rank file holding the edited row was rewritten."""
    import json

    from paramedit.cli import main
    from tests.model_jobs.dcp_job import full_weights

    folder = tmp_path / "ckpt"
    _torchrun("save", str(folder))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    log = tmp_path / "edits.json"
    log.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": [
        {"op": "set", "target": "layer.weight", "index": "[5, :]", "value": 0.5}]}))
    assert main(["apply", str(folder), str(log), "--in-place"]) == 0
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after.get("__0_0.distcp") == before["__0_0.distcp"]  # rank 0's rows are untouched
    assert "__1_0.distcp" not in after and len(after) == len(before)
    _torchrun("load", str(folder), str(tmp_path / "resumed.pt"))
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    expected = full_weights()
    expected["layer.weight"][5] = 0.5
    assert resumed["step"] == 7
    for name, value in expected.items():
        assert torch.equal(resumed["model"][name], value), name


def test_a_dcp_folder_saved_elsewhere_is_a_dcp_folder_with_the_jobs_other_entries(tmp_path):
    import torch.distributed.checkpoint as dcp

    import paramedit

    state = {"model": {"w": torch.arange(12.0).reshape(3, 4)}, "step": 11, "sched": {"lr": 0.25}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=str(tmp_path / "a"), no_dist=True)
        s = paramedit.open_session(None, tmp_path / "a")
        s.stage("w", "[0, 0]", -1.0)
        s.commit()
        s.save(tmp_path / "b")
        loaded = {"model": {"w": torch.zeros(3, 4)}, "step": 0, "sched": {"lr": 0.0}}
        dcp.load(loaded, checkpoint_id=str(tmp_path / "b"), no_dist=True)
    assert loaded["step"] == 11 and loaded["sched"] == {"lr": 0.25}
    assert float(loaded["model"]["w"][0, 0]) == -1.0 and torch.equal(loaded["model"]["w"][1:], state["model"]["w"][1:])
    assert not any(p.name.endswith(".paramedit-tmp") for p in tmp_path.iterdir())
