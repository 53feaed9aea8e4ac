"""Staging, validation, commit identity, undo/redo, revert, changed counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import paramedit
from paramedit.core.errors import EditError, ExpressionError, RegionError, ValueValidationError


@pytest.fixture
def session(models_py, linear_ckpt):
    return paramedit.open_session(f"{models_py}:Net", linear_ckpt)


def _bits(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().numpy().tobytes()


@pytest.mark.parametrize(
    ("stage", "error"),
    [
        (lambda s: s.stage("fc.weight", "[0, :]", "abc"), ValueValidationError),
        (lambda s: s.stage("fc.weight", "[0, :]", 1e40), ValueValidationError),
        (lambda s: s.stage("fc.weight", "[0, :]", [1, 2]), ValueValidationError),
        (lambda s: s.stage("fc.weight", "[7, :]", 1.0), RegionError),
        (lambda s: s.stage("fc.weight", "[[0, 1]]", 1.0), RegionError),
        (lambda s: s.stage("nope.weight", "[...]", 1.0), EditError),
        (lambda s: s.stage_formula("fc.weight", "[...]", "x.data"), ExpressionError),
        (lambda s: s.stage_formula("fc.weight", "[...]", "x + zeros(7, 7)"), ExpressionError),
        (lambda s: s.stage_init("fc.weight", "[...]", "nonsense"), EditError),
        (lambda s: s.stage_init("fc.bias", "[...]", "orthogonal"), EditError),
        (lambda s: s.stage_copy("fc.weight", "[...]", source=None, source_index="[:2, :]"), ValueValidationError),
    ],
)
def test_bad_edits_are_refused_before_anything_is_written(session, stage, error):
    before = {n: _bits(session.tensor(n)) for n in session.names()}
    with pytest.raises(error):
        stage(session)
    assert session.staged == []
    session.commit()
    assert {n: _bits(session.tensor(n)) for n in session.names()} == before
    assert not session.can_undo


def test_integer_buffer_refuses_fractions_and_overflow(models_py):
    s = paramedit.open_session(f"{models_py}:ConvBN")
    with pytest.raises(ValueValidationError):
        s.stage("bn.num_batches_tracked", "[...]", 2.5)
    with pytest.raises(ValueValidationError):
        s.stage("bn.num_batches_tracked", "[...]", float("nan"))
    s.stage("bn.num_batches_tracked", "[...]", 7)
    s.commit()
    assert s.tensor("bn.num_batches_tracked").item() == 7
    assert s.tensor("bn.num_batches_tracked").dtype == torch.int64


def test_float16_overflow_is_refused(models_py):
    s = paramedit.open_session(f"{models_py}:HalfNet")
    with pytest.raises(ValueValidationError):
        s.stage("fc.weight", "[0, 0]", 1e40)
    s.stage("fc.weight", "[0, 0]", float("inf"))  # Inf is a float16 value
    s.commit()
    assert s.tensor("fc.weight")[0, 0].item() == float("inf")


def test_staged_edits_see_earlier_staged_edits(session):
    s = session
    s.stage("fc.bias", "[...]", 1.0)
    s.stage_formula("fc.bias", "[1:]", "x * 10")
    values, mask = s.preview("fc.bias")
    assert values.tolist() == [1.0, 10.0, 10.0]
    assert mask.all()
    assert s.tensor("fc.bias").tolist() != [1.0, 10.0, 10.0], "preview does not write"
    s.commit()
    assert s.tensor("fc.bias").tolist() == [1.0, 10.0, 10.0]


def test_preview_of_a_window_costs_the_window(session):
    s = session
    s.stage("fc.weight", "[1, 2:4]", 5.0)
    values, mask = s.preview("fc.weight", "[0:2, 3:5]")
    assert values.shape == (2, 2)
    assert mask.tolist() == [[False, False], [True, False]]
    assert values[1, 0].item() == 5.0


def test_commit_then_undo_redo_restore_exact_bits(session):
    s = session
    w = s.tensor("fc.weight")
    original = _bits(w)
    s.stage_init("fc.weight", "[:, 1:3]", "normal", {"std": 0.02}, seed=3)
    s.commit()
    edited = _bits(w)
    assert edited != original
    assert s.changed_count("fc.weight") == 6
    s.undo()
    assert _bits(w) == original and s.changed_count("fc.weight") == 0
    assert s.can_redo
    s.redo()
    assert _bits(w) == edited
    assert s.model.fc.weight is w


def test_undo_memory_grows_with_the_region_not_the_tensor(models_py):
    big = nn.Embedding(5000, 64)
    s = paramedit.open_session(big)
    s.stage("weight", "[4999, 63]", 0.5)
    s.commit()
    record = s.history.records[-1]
    assert record.nbytes == 2 * 4  # one old and one new float32 value
    assert s.tensor("weight")[4999, 63].item() == 0.5


def test_init_is_seeded_and_reproducible(models_py, linear_ckpt):
    a = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    b = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    for s in (a, b):
        s.stage_init("fc.weight", "[...]", "kaiming_uniform", {"a": 5 ** 0.5}, seed=42)
        s.commit()
    assert torch.equal(a.tensor("fc.weight"), b.tensor("fc.weight"))


@pytest.mark.parametrize("method", ["zeros", "ones", "constant", "arange", "normal", "uniform",
                                    "xavier_uniform", "xavier_normal", "kaiming_uniform",
                                    "kaiming_normal", "eye", "orthogonal"])
def test_every_init_method_commits_in_place(session, method):
    w = session.tensor("fc.weight")
    args = {"value": 0.25} if method == "constant" else {}
    session.stage_init("fc.weight", "[...]", method, args, seed=1)
    session.commit()
    assert session.model.fc.weight is w
    assert torch.isfinite(w).all()
    if method == "eye":
        assert torch.equal(w.detach(), torch.eye(3, 5))
    if method == "arange":
        assert w.detach().flatten().tolist() == [float(i) for i in range(15)]


def test_revert_to_checkpoint_is_undoable(session, linear_ckpt):
    ckpt = torch.load(linear_ckpt, weights_only=True)
    s = session
    s.stage("fc.weight", "[...]", 0.0)
    s.commit()
    assert s.changed_count("fc.weight") == 15
    s.revert("fc.weight")
    assert torch.equal(s.tensor("fc.weight").detach(), ckpt["fc.weight"])
    assert s.changed_count("fc.weight") == 0
    s.undo()
    assert s.changed_count("fc.weight") == 15


def test_edit_log_lists_committed_edits_and_drops_undone_ones(session):
    s = session
    s.stage("fc.bias", "[:]", [0, 1, 2])
    s.commit()
    s.stage_formula("fc.weight", "[0]", "clamp(x * 0.5, -1, 1)")
    s.commit()
    s.undo()
    log = s.edit_log()
    assert log["format"] == "paramedit.edits" and log["version"] == 1
    assert log["edits"] == [{"op": "set", "target": "fc.bias", "index": "[:]", "value": [0, 1, 2]}]


def test_apply_edits_is_all_or_nothing(session):
    from paramedit.core.editing.edits import Edit

    before = _bits(session.tensor("fc.weight"))
    with pytest.raises(ValueValidationError, match="edit 2"):
        session.apply_edits([Edit("set", "fc.weight", "[...]", value=2.0),
                             Edit("set", "fc.bias", "[...]", value="x")])
    assert _bits(session.tensor("fc.weight")) == before
    assert session.staged == []


def test_staged_edits_survive_undo_and_are_recomputed(session):
    s = session
    s.stage("fc.bias", "[...]", 1.0)
    s.commit()
    s.stage_formula("fc.bias", "[...]", "x + 1")
    s.undo()  # x is now the checkpoint bias again
    original = s.tensor("fc.bias").detach().clone()
    s.commit()
    assert torch.allclose(s.tensor("fc.bias").detach(), original + 1)


def test_edited_means_differs_from_the_checkpoint_not_touched(models_py, linear_ckpt):
    """Issue 10: a commit of the same values, or one undone, leaves no 'edited' mark."""
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    same = float(s.tensor("fc.bias")[0])
    s.stage("fc.bias", "[0]", same)
    s.commit()
    assert s.edited_names() == set()
    s.stage("fc.weight", "[1, 2]", 123.0)
    s.commit()
    assert s.edited_names() == {"fc.weight"}
    s.undo()
    assert s.edited_names() == set()
    s.redo()
    assert s.edited_names() == {"fc.weight"}
    s.revert("fc.weight")
    assert s.edited_names() == set()
    assert s.changed_count("fc.weight") == 0


def test_changes_made_outside_are_seen_by_version_and_block_a_stale_staged_edit():
    """Issue 14: an optimizer step in the notebook shows in the window; a staged edit over values
    that changed underneath is refused before it is written."""
    model = nn.Linear(3, 2)
    s = paramedit.open_session(model)
    assert s.changed_outside() == set()
    s.stage("weight", "[0, 0]", 5.0)
    s.commit()
    assert s.changed_outside() == set()  # our own write is not "outside"
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    s.stage("bias", "[0]", 1.0)
    opt.step()  # the notebook steps while an edit is staged
    assert s.changed_outside() == {"weight", "bias"}
    with pytest.raises(EditError, match="changed outside paramedit after the edit was staged"):
        s.commit()
    assert float(model.bias[0]) != 1.0
    s.discard()
    s.stage("bias", "[0]", 1.0)
    s.commit()
    assert float(model.bias[0]) == 1.0 and opt.param_groups[0]["params"][1] is model.bias
