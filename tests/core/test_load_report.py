"""The load report: never a silent strict=False."""

from __future__ import annotations

import torch
from torch import nn

import paramedit


def test_missing_unexpected_mismatched_and_converted(models_py, tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({
        "fc.weight": torch.ones(4, 5, dtype=torch.float64),  # wrong shape (model: 3 x 5)
        "extra.thing": torch.zeros(2),
    }, path)
    s = paramedit.open_session(f"{models_py}:Net", path)
    r = s.report
    assert r.missing == ["fc.bias"]
    assert r.unexpected == ["extra.thing"]
    assert r.mismatched == [("fc.weight", (4, 5), (3, 5))]
    assert not r.clean
    summary = r.summary()
    assert "fc.bias" in summary and "extra.thing" in summary and "[4, 5]" in summary


def test_dtype_conversion_is_reported(models_py, tmp_path):
    path = tmp_path / "half.pt"
    torch.save({"fc.weight": torch.ones(3, 5, dtype=torch.float16), "fc.bias": torch.zeros(3)}, path)
    s = paramedit.open_session(f"{models_py}:Net", path)
    assert s.report.converted == [("fc.weight", "float16", "float32")]
    assert s.tensor("fc.weight").dtype == torch.float32


def test_shape_mismatch_then_copy_a_slice_of_the_checkpoint_tensor(models_py, tmp_path):
    """Transfer part of a pre-trained layer into a smaller new one: copy with source_index."""
    torch.manual_seed(0)
    big = nn.Linear(10, 5)
    path = tmp_path / "big.pt"
    torch.save(big.state_dict(), path)
    s = paramedit.open_session(f"{models_py}:Small", path)  # Small.fc is Linear(10, 3)
    assert [m[0] for m in s.report.mismatched] == ["fc.weight", "fc.bias"]
    weight = s.tensor("fc.weight")
    s.stage_copy("fc.weight", "[...]", source_index="[:3, :]")
    s.stage_copy("fc.bias", "[...]", source_index="[:3]")
    s.commit()
    assert s.tensor("fc.weight") is weight
    assert torch.equal(weight.detach(), big.weight.detach()[:3])
    assert torch.equal(s.tensor("fc.bias").detach(), big.bias.detach()[:3])
    assert s.edit_log()["edits"][0]["source"] is None  # "this session's checkpoint"


def test_lightning_style_wrapper_prefix_is_matched(models_py, tmp_path):
    path = tmp_path / "lightning.ckpt"
    net = nn.Linear(5, 3)
    torch.save({"state_dict": {"model.fc.weight": net.weight.detach(), "model.fc.bias": net.bias.detach()},
                "epoch": 3, "global_step": 120}, path)
    s = paramedit.open_session(f"{models_py}:Net", path)
    assert s.report.clean, s.report.summary()
    assert any("model." in n for n in s.report.notes)
    assert torch.equal(s.tensor("fc.weight").detach(), net.weight.detach())


def test_tensors_only_session_cannot_run_backward(linear_ckpt):
    import pytest

    from paramedit.core.errors import BackwardCheckError

    s = paramedit.open_session(None, linear_ckpt)
    assert s.infos()["fc.weight"].kind == "tensor"
    with pytest.raises(BackwardCheckError, match="needs a model"):
        s.run_backward()
    s.stage("fc.bias", "[0]", 1.5)
    s.commit()
    assert s.tensor("fc.bias")[0].item() == 1.5


def test_spec_with_full_checkpoint_attaches_mapped_tensors_without_copying(models_py, linear_ckpt):
    """Issue 4: build on meta, attach the checkpoint's own tensors (no init, no copy)."""
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    assert s.report.assigned and s.report.clean
    w = s.tensor("fc.weight")
    assert isinstance(w, nn.Parameter) and w.requires_grad and not w.is_meta
    assert w.untyped_storage().data_ptr() == s.checkpoint.tensors["fc.weight"].untyped_storage().data_ptr()
    before = linear_ckpt.read_bytes()
    s.stage("fc.weight", "[0, 0]", 42.0)
    s.commit()
    assert linear_ckpt.read_bytes() == before, "an edit never writes through to the file"
    assert s.changed_count("fc.weight") == 1
    s.revert("fc.weight")
    assert s.changed_count("fc.weight") == 0
    assert s.run_backward(inputs=(torch.randn(2, 5),)).ok


def test_tied_model_stays_tied_when_attached_from_meta(models_py, tmp_path):
    path = tmp_path / "tied.pt"
    torch.save({"embed.weight": torch.randn(11, 4)}, path)
    s = paramedit.open_session(f"{models_py}:Tied", path)
    assert s.report.assigned
    assert s.model.out.weight is s.model.embed.weight
    assert s.report.tied == [("out.weight", "embed.weight")]


def test_partial_checkpoint_falls_back_to_copying_and_says_so(models_py, tmp_path):
    path = tmp_path / "partial.pt"
    torch.save({"fc.weight": torch.ones(3, 5)}, path)
    s = paramedit.open_session(f"{models_py}:Net", path)
    assert not s.report.assigned
    assert s.report.missing == ["fc.bias"]
    assert any("built the model with its own initial values" in n and "1 tensor(s) of the model are not in the checkpoint" in n
               for n in s.report.notes)
    assert not s.tensor("fc.bias").is_meta
