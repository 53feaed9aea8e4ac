"""Atomic saves: tied tensors once, permissions kept, saving over the loaded (mapped) file."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from safetensors import safe_open

import paramedit
from paramedit.core.checkpoints.saving import atomic_write, stale_temp_files
from paramedit.core.errors import SaveError


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_save_over_the_loaded_file_gives_the_edited_content(models_py, tmp_path, suffix):
    s0 = paramedit.open_session(f"{models_py}:Net")
    path = tmp_path / f"net{suffix}"
    s0.save(path)
    s = paramedit.open_session(f"{models_py}:Net", path)
    s.stage("fc.weight", "[...]", 3.0)
    s.commit()
    assert s.unsaved
    s.save(path)
    assert not s.unsaved
    reopened = paramedit.open_session(None, path)
    assert torch.equal(reopened.tensor("fc.weight"), torch.full((3, 5), 3.0))
    assert stale_temp_files(tmp_path) == []


def test_tensors_only_session_saves_over_its_mmapped_file(tmp_path):
    path = tmp_path / "t.pt"
    torch.save({"a": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(4)}, path)
    s = paramedit.open_session(None, path)
    s.stage("a", "[0, 0]", 100.0)
    s.commit()
    s.save(path)
    assert s.changed_count("a") == 1, "the baseline is the file as it was opened, not as saved"
    again = torch.load(path, weights_only=True)
    assert again["a"][0, 0].item() == 100.0 and again["a"][1, 2].item() == 5.0


def test_tied_tensors_saved_once_and_retied(models_py, tmp_path):
    s = paramedit.open_session(f"{models_py}:Tied")
    out = tmp_path / "tied.safetensors"
    s.save(out)
    with safe_open(out, "pt") as f:
        assert set(f.keys()) == {"embed.weight"}
        assert json.loads(f.metadata()["paramedit.aliases"]) == {"out.weight": "embed.weight"}
    t = paramedit.open_session(None, out)
    assert t.aliases() == {"out.weight": "embed.weight"}
    t.stage("out.weight", "[0, 0]", 9.0)
    t.commit()
    assert t.tensor("embed.weight")[0, 0].item() == 9.0
    m = paramedit.open_session(f"{models_py}:Tied", out)
    assert m.report.missing == [] and m.report.unexpected == []

    pt = tmp_path / "tied.pt"
    s.save(pt)
    loaded = torch.load(pt, weights_only=True)
    assert loaded["out.weight"].untyped_storage().data_ptr() == loaded["embed.weight"].untyped_storage().data_ptr()


def test_save_keeps_permissions_of_existing_file(models_py, tmp_path):
    path = tmp_path / "net.pt"
    s = paramedit.open_session(f"{models_py}:Net")
    s.save(path)
    os.chmod(path, 0o640)
    s.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old content")

    def boom(tmp):
        tmp.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(SaveError, match="previous file is unchanged"):
        atomic_write(path, boom)
    assert path.read_bytes() == b"old content"
    assert stale_temp_files(tmp_path) == []


def test_save_into_missing_folder_is_a_clear_error(models_py, tmp_path):
    s = paramedit.open_session(f"{models_py}:Net")
    with pytest.raises(SaveError, match="does not exist"):
        s.save(tmp_path / "nope" / "x.pt")


def test_export_edit_log_replays(models_py, linear_ckpt, tmp_path):
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    s.stage_formula("fc.weight", "[0]", "clamp(x * 0.5, -1, 1)")
    s.stage_init("fc.bias", "[...]", "normal", {"std": 0.02}, seed=0)
    s.commit()
    log = tmp_path / "edits.json"
    s.export_edits(log)
    r = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    r.apply_edits(paramedit.read_edit_log(log))
    for name in ("fc.weight", "fc.bias"):
        assert torch.equal(r.tensor(name), s.tensor(name))
