"""Comparing two checkpoints (issue 10): per-tensor figures that match torch's, across formats
and prefixes, cmp's exit codes, and clear refusals."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import paramedit
from paramedit.cli import main
from paramedit.core.analysis.checkpoint_compare import compare_tensors
from paramedit.core.analysis.chunked_reads import ChunkReader


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 50))

    def forward(self, x):
        return self.body(self.emb(x))


def trained_pair(tmp_path):
    torch.manual_seed(0)
    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(model.state_dict(), tmp_path / "before.pt")
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        x = torch.randint(50, (4, 8))
        loss = nn.functional.cross_entropy(model(x).reshape(-1, 50), x.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # Another format, and DDP's prefix: both resolved as when opening.
    save_file({f"module.{k}": v.contiguous() for k, v in after.items()}, tmp_path / "after.safetensors")
    return before, after


def test_diff_after_sgd_steps_matches_torch(tmp_path, capsys):
    before, after = trained_pair(tmp_path)
    code, out, err = run(["diff", tmp_path / "before.pt", tmp_path / "after.safetensors", "--json"], capsys)
    assert code == 1, err
    data = json.loads(out)
    assert data["summary"]["only_a"] == data["summary"]["only_b"] == 0
    rows = {t["name"]: t for t in data["tensors"]}
    assert set(rows) == set(before)
    for name, a in before.items():
        d = (after[name] - a).double()
        row = rows[name]
        assert row["numel"] == a.numel()
        assert row["changed_cells"] == int((d != 0).sum()), name
        assert row["max_abs_diff"] == pytest.approx(float(d.abs().max()), rel=1e-6, abs=1e-12)
        expected = float(d.norm() / a.double().norm())
        assert row["rel_change"] == pytest.approx(expected, rel=1e-5), name
        assert row["status"] == ("changed" if row["changed_cells"] else "same")
    # Embedding rows no token touched are the same: not every cell of emb.weight changed.
    assert 0 < rows["emb.weight"]["changed_cells"] < before["emb.weight"].numel()


def test_identical_checkpoints_exit_0_and_atol(tmp_path, capsys):
    before, _ = trained_pair(tmp_path)
    torch.save({k: v + 1e-7 for k, v in before.items()}, tmp_path / "nudged.pt")
    assert run(["diff", tmp_path / "before.pt", tmp_path / "before.pt"], capsys)[0] == 0
    assert run(["diff", tmp_path / "before.pt", tmp_path / "nudged.pt"], capsys)[0] == 1
    code, out, _ = run(["diff", tmp_path / "before.pt", tmp_path / "nudged.pt", "--atol", "1e-6"], capsys)
    assert code == 0 and "identical" in out


def test_nan_on_both_sides_is_the_same_and_on_one_side_is_a_change():
    a = torch.tensor([1.0, math.nan, 3.0, math.inf])
    b = torch.tensor([1.0, math.nan, math.nan, math.inf])
    report = compare_tensors({"x": a}, {"x": b})
    row = report.tensors[0]
    assert row.status == "changed" and row.changed_cells == 1
    assert compare_tensors({"x": a}, {"x": a.clone()}).identical


def test_shape_dtype_only_a_only_b():
    a = {"w": torch.ones(2, 3), "b": torch.zeros(3), "old": torch.ones(1)}
    b = {"w": torch.ones(3, 2), "b": torch.zeros(3, dtype=torch.float16), "new": torch.ones(1)}
    report = compare_tensors(a, b)
    status = {t.name: t.status for t in report.tensors}
    assert status == {"w": "shape", "b": "dtype", "new": "only_b", "old": "only_a"}
    assert not report.identical
    assert report.summary_counts() == {"same": 0, "changed": 2, "only_a": 1, "only_b": 1}


def test_blocks_give_the_same_figures_as_one_pass():
    torch.manual_seed(0)
    a, b = torch.randn(300, 17), torch.randn(300, 17)
    b[:100] = a[:100]
    whole = compare_tensors({"x": a}, {"x": b}).tensors[0]
    import paramedit.core.analysis.checkpoint_compare as cc

    original = cc.ChunkReader
    cc.ChunkReader = lambda files=(): ChunkReader(files, chunk_elements=17 * 9)  # type: ignore[assignment]
    try:
        chunked = compare_tensors({"x": a}, {"x": b}).tensors[0]
    finally:
        cc.ChunkReader = original
    assert chunked.changed_cells == whole.changed_cells == 200 * 17
    assert chunked.max_abs_diff == whole.max_abs_diff
    assert chunked.rel_change == pytest.approx(whole.rel_change, rel=1e-6)  # float32 norms per block


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    torch.save({"x": torch.ones(2)}, tmp_path / "x.pt")
    torch.save({"y": torch.ones(2)}, tmp_path / "y.pt")
    code, out, err = run(["diff", tmp_path / "x.pt", tmp_path / "y.pt"], capsys)
    assert code == 2 and out == "" and "no tensor name in common" in err
    code, _, err = run(["diff", tmp_path / "x.pt", tmp_path / "missing.pt"], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run(["diff", tmp_path / "x.pt", tmp_path / "x.pt", "--atol", "-1"], capsys)
    assert code == 2 and "atol" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt", "y.pt"]


def test_session_compare_with_the_checkpoint_it_was_opened_from(tmp_path):
    torch.save(Tiny().state_dict(), tmp_path / "tiny.pt")
    s = paramedit.open_session(f"{__file__}:Tiny", tmp_path / "tiny.pt")
    assert s.compare().identical
    s.stage("body.0.bias", "[3]", 42.0)
    s.commit()
    report = s.compare()
    changed = {t.name: t for t in report.tensors if t.status != "same"}
    assert list(changed) == ["body.0.bias"] and changed["body.0.bias"].changed_cells == 1
    s.undo()
    assert s.compare().identical


def test_the_report_gives_the_reference_tensor_and_one_scale(tmp_path):
    a = {"module.w": torch.zeros(2, 2), "module.v": torch.zeros(3)}
    b = {"w": torch.tensor([[0.0, 2.0], [0.0, -5.0]]), "v": torch.ones(3)}
    report = compare_tensors(a, b)
    assert report.reference_tensor("w") is a["module.w"]
    assert report.scale() == 5.0
    assert report.reference_tensor("missing") is None


def test_a_tied_alias_the_reference_lacks_is_not_only_in_b(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64,
                                                         n_positions=16)).save_pretrained(tmp_path / "g")
    s = paramedit.open_session(None, tmp_path / "g")  # the tied head: lm_head.weight, an alias of wte
    report = s.compare()
    assert report.identical, [t.describe() for t in report.tensors if t.status != "same"]
