"""Issue 5: model code that misbehaves, and odd files opened as a session.

Each case: the session (or the one already open) survives, weights and gradients are bit-for-bit
what they were, and the error is a ParameditError whose message names the cause. The cases
that exposed core bugs (sys.exit in model code, meta leftovers, sparse buffers) guard their fixes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import textwrap
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import paramedit
from paramedit.core.checkpoints.formats import load_checkpoint
from paramedit.core.errors import (
    BackwardCheckError,
    CheckpointError,
    DeviceError,
    EditError,
    IdentityViolationError,
    ModelSpecError,
    ParameditError,
)

BAD_MODELS = '''
import sys
import torch
from torch import nn


class Boom(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        raise ArithmeticError("backward exploded")


class Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 3)

    def forward(self, x):
        return self.a(x) + self.b(x)


class RaisesInForward(Base):
    def forward(self, x):
        self.a(x).sum().backward()  # leaves partial gradients behind before failing
        raise KeyError("forward exploded")


class RaisesInBackward(Base):
    def forward(self, x):
        return self.a(x) + Boom.apply(self.b(x))


class ReturnsInt(Base):
    def forward(self, x):
        return (self.a(x) > 0).long()


class ReturnsDetached(Base):
    def forward(self, x):
        return self.a(x).detach() + self.b(x).detach()


class ReturnsNothing(Base):
    def forward(self, x):
        self.a(x)
        return {"loss": None, "text": "done", "n": 3}


class ExitsInForward(Base):
    def forward(self, x):
        sys.exit(3)


class ExitsInInit(Base):
    def __init__(self):
        super().__init__()
        sys.exit(2)


class RaisesInInit(Base):
    def __init__(self):
        super().__init__()
        raise ValueError("constructor exploded")


class ReplacesItsWeight(Base):
    def forward(self, x):
        w = self.a.weight
        del self.a.weight
        self.a.weight = w.detach().clone()  # the classic mistake, inside forward
        return self.a(x) + self.b(x)


class NonLeafSlot(nn.Module):
    def __init__(self):
        super().__init__()
        self.base = nn.Parameter(torch.ones(3, 4))
        self.lin = nn.Linear(4, 3)
        self.lin._parameters["weight"] = self.base * 2  # a computed tensor where a Parameter belongs

    def forward(self, x):
        return self.lin(x)


class WeightNormed(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3))

    def forward(self, x):
        return self.lin(x)


class DataDependentInit(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.scale = float(self.a.weight.abs().max())  # needs real values: fails on the meta device

    def forward(self, x):
        return self.a(x) * self.scale


class PlainTensorAttribute(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.mask = torch.tensor([1.0, 0.0, 1.0])  # not a buffer: not in the state dict

    def forward(self, x):
        return self.a(x) * self.mask
'''

BAD_IMPORTS = {
    "raises": "raise RuntimeError('import exploded')\n",
    "argparse": "import argparse\nargs = argparse.ArgumentParser().parse_args(['--nope'])\n",
    "exits": "import sys\nsys.exit('bye')\n",
}


@pytest.fixture
def bad_py(tmp_path: Path) -> Path:
    path = tmp_path / "bad_models.py"
    path.write_text(BAD_MODELS)
    return path


def base_ckpt(folder: Path) -> Path:
    torch.manual_seed(1)
    net = nn.Module()
    net.a, net.b = nn.Linear(4, 3), nn.Linear(4, 3)
    path = folder / "base.pt"
    torch.save(net.state_dict(), path)
    return path


def bits(t: torch.Tensor | None) -> bytes | None:
    return None if t is None else t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def state(s) -> dict[str, tuple]:
    """Every tensor's bits and its gradient's identity and bits."""
    out = {}
    for name in s.names():
        t = s.tensor(name)
        with warnings.catch_warnings():  # .grad of a non-leaf warns
            warnings.simplefilter("ignore")
            grad = t.grad
        out[name] = (bits(t), id(grad) if grad is not None else None, bits(grad))
    return out


def with_old_grads(s) -> None:
    """Give some parameters a gradient from an earlier step (and leave others without)."""
    for i, name in enumerate(s.names()):
        t = s.tensor(name)
        if t.requires_grad and t.is_leaf and i % 2 == 0:
            t.grad = torch.full_like(t, 0.125 * (i + 1))


def still_edits(s) -> None:
    name = s.names()[-1]
    before = bits(s.tensor(name))
    s.stage(name, "[...]", 0.5)
    s.commit()
    assert (s.tensor(name) == 0.5).all()
    s.undo()
    assert bits(s.tensor(name)) == before


# ---------------------------------------------------------------- import and construction


@pytest.mark.parametrize(("kind", "names"), [("raises", ["RuntimeError", "import exploded"]),
                                             ("argparse", ["SystemExit"]), ("exits", ["SystemExit", "bye"])])
def test_import_that_fails_leaves_the_open_session_and_interpreter_as_they_were(
    models_py, linear_ckpt, tmp_path, kind, names
) -> None:
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    before, modules, path = state(s), set(sys.modules), list(sys.path)
    bad = tmp_path / f"bad_import_{kind}.py"
    bad.write_text(BAD_IMPORTS[kind])
    with pytest.raises(ModelSpecError) as info:
        paramedit.open_session(f"{bad}:Net", linear_ckpt)
    assert all(n in info.value.message for n in names), info.value.message
    assert str(bad) in info.value.message and "Traceback" in (info.value.details or "")
    assert state(s) == before and set(sys.modules) == modules and sys.path == path
    still_edits(s)


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_constructor_that_raises_is_named(bad_py, tmp_path, with_checkpoint) -> None:
    ckpt = base_ckpt(tmp_path) if with_checkpoint else None
    with pytest.raises(ModelSpecError, match="ValueError: constructor exploded"):
        paramedit.open_session(f"{bad_py}:RaisesInInit", ckpt)


def test_constructor_that_calls_exit_is_an_error_not_an_exit(bad_py) -> None:
    with pytest.raises(ModelSpecError, match="SystemExit"):
        paramedit.open_session(f"{bad_py}:ExitsInInit")


def test_constructor_that_needs_real_values_still_opens_with_a_checkpoint(bad_py, tmp_path) -> None:
    torch.manual_seed(0)
    ckpt = tmp_path / "a.pt"
    torch.save({f"a.{k}": v for k, v in nn.Linear(4, 3).state_dict().items()}, ckpt)
    s = paramedit.open_session(f"{bad_py}:DataDependentInit", ckpt)
    assert torch.equal(s.tensor("a.weight").detach(), torch.load(ckpt, weights_only=True)["a.weight"])


def test_plain_tensor_attribute_is_real_after_opening_with_a_checkpoint(bad_py, tmp_path) -> None:
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    ckpt = tmp_path / "a.pt"
    torch.save({f"a.{k}": v for k, v in lin.state_dict().items()}, ckpt)
    s = paramedit.open_session(f"{bad_py}:PlainTensorAttribute", ckpt)
    x = torch.randn(2, 4)
    expected = float((lin(x) * torch.tensor([1.0, 0.0, 1.0])).sum())
    assert not s.model.mask.is_meta
    assert s.run_backward(inputs=(x,)).loss == pytest.approx(expected)


# ---------------------------------------------------------------- the backward check


@pytest.mark.parametrize(
    ("model", "needles"),
    [
        ("RaisesInForward", ["forward raised KeyError", "forward exploded"]),
        ("RaisesInBackward", ["backward raised ArithmeticError", "backward exploded"]),
        ("ReturnsInt", ["no tensor that requires grad", "Tensor"]),
        ("ReturnsDetached", ["no tensor that requires grad"]),
        ("ReturnsNothing", ["no tensor that requires grad", "dict"]),
    ],
)
def test_failing_backward_check_restores_weights_and_grads(bad_py, tmp_path, model, needles) -> None:
    s = paramedit.open_session(f"{bad_py}:{model}", base_ckpt(tmp_path))
    with_old_grads(s)
    s.model.train()
    before = state(s)
    with pytest.raises(BackwardCheckError) as info:
        s.run_backward(inputs=(torch.randn(2, 4),))
    for needle in needles:
        assert needle in info.value.message, info.value.message
    assert state(s) == before
    assert s.model.training  # the mode is put back
    still_edits(s)


def test_forward_that_calls_exit_is_an_error_not_an_exit(bad_py) -> None:
    s = paramedit.open_session(f"{bad_py}:ExitsInForward")
    with_old_grads(s)
    before = state(s)
    with pytest.raises(BackwardCheckError, match="SystemExit"):
        s.run_backward(inputs=(torch.randn(2, 4),))
    assert state(s) == before


def test_forward_that_replaces_a_parameter_is_reported(bad_py) -> None:
    s = paramedit.open_session(f"{bad_py}:ReplacesItsWeight")
    report = s.run_backward(inputs=(torch.randn(2, 4),))
    assert report.replaced == ["a.weight"] and not report.ok
    assert "no longer nn.Parameters: a.weight" in report.verdict()


def test_commit_to_a_replaced_parameter_writes_nothing(bad_py) -> None:
    s = paramedit.open_session(f"{bad_py}:ReplacesItsWeight")
    orphan = s.tensor("a.weight")
    s.run_backward(inputs=(torch.randn(2, 4),))
    before, live = bits(orphan), bits(s.model.a.weight)
    s.stage("a.weight", "[0, 0]", 5.0)
    with pytest.raises(IdentityViolationError, match=r"a\.weight"):
        s.commit()
    assert bits(orphan) == before and bits(s.model.a.weight) == live
    assert not s.can_undo


def test_non_leaf_in_a_parameter_slot_is_named_as_such(bad_py) -> None:
    s = paramedit.open_session(f"{bad_py}:NonLeafSlot")
    report = s.run_backward(inputs=(torch.randn(2, 4),))
    assert report.replaced == []
    assert any("lin.weight is not a leaf" in note for note in report.notes)


def test_non_leaf_in_a_parameter_slot_survives(bad_py) -> None:
    s = paramedit.open_session(f"{bad_py}:NonLeafSlot")
    report = s.run_backward(inputs=(torch.randn(2, 4),))
    assert "lin.weight" in report.missing_grad and not report.ok
    assert any("not a leaf" in note for note in report.notes)
    assert s.tensor("base").grad is not None  # the real leaf behind it did get its gradient
    still_edits(s)


def test_parametrized_weights_are_edited_through_their_leaves(bad_py) -> None:
    s = paramedit.open_session(f"{bad_py}:WeightNormed")
    assert {"lin.parametrizations.weight.original0", "lin.parametrizations.weight.original1"} <= set(s.names())
    assert s.run_backward(inputs=(torch.randn(2, 4),)).ok
    s.stage("lin.parametrizations.weight.original1", "[...]", 1.0)
    s.commit()
    w = s.model.lin.weight
    assert torch.allclose(w.norm(dim=1), s.tensor("lin.parametrizations.weight.original0").detach().reshape(-1))


# ---------------------------------------------------------------- odd tensors


class OddModule(nn.Module):
    def __init__(self, *, sparse: bool = False) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.c = nn.Parameter(torch.ones(3, dtype=torch.complex64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.register_buffer("q", torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8))
        if sparse:
            self.register_buffer("adjacency", torch.eye(3).to_sparse())  # a GNN's graph, as a buffer

    def forward(self, x):
        return (x * self.w).sum() + (x * self.c).real.sum()


@pytest.mark.parametrize("name", ["c", "q"])
def test_complex_and_quantized_are_shown_read_only(name) -> None:
    s = paramedit.open_session(OddModule())
    before = state(s)
    reason = s.info(name).read_only
    assert reason and ("complex" in reason or "quantized" in reason)
    for stage in (lambda: s.stage(name, "[0]", 1.0), lambda: s.stage_formula(name, "[...]", "x * 2"),
                  lambda: s.stage_init(name, "[...]", "zeros")):  # fmt: skip
        with pytest.raises(EditError, match=reason):
            stage()
    assert s.staged == [] and state(s) == before
    values, mask = s.preview(name)
    assert values.shape == (3,) and not mask.any()
    assert s.run_backward(inputs=(torch.randn(3),)).ok


def test_stats_of_a_quantized_buffer() -> None:
    s = paramedit.open_session(OddModule())
    assert s.stats("q").max == pytest.approx(1.0)


def test_a_model_with_a_sparse_buffer_opens_read_only() -> None:
    s = paramedit.open_session(OddModule(sparse=True))
    assert "sparse" in (s.info("adjacency").read_only or "")
    with pytest.raises(EditError):
        s.stage("adjacency", "[0, 0]", 2.0)


def test_sparse_quantized_meta_in_a_checkpoint_are_listed_not_loaded(tmp_path, capsys) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        odd = {"w": torch.ones(2), "cplx": torch.ones(2, dtype=torch.complex64), "sparse": torch.eye(3).to_sparse(),
               "q": torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8),
               "meta": torch.empty(3, device="meta")}  # fmt: skip
        torch.save(odd, tmp_path / "odd.pt")
    s = paramedit.open_session(None, tmp_path / "odd.pt")
    assert s.names() == ["w", "cplx"] and s.info("cplx").read_only
    assert set(s.checkpoint.skipped) == {"sparse", "q", "meta"}
    s.stage("w", "[...]", 3.0)
    s.commit()
    s.save(tmp_path / "out.safetensors")  # what cannot be shown is not saved either, and that is said
    from paramedit.cli import main

    assert main(["inspect", str(tmp_path / "odd.pt")]) == 0
    out = capsys.readouterr().out
    assert "skipped sparse" in out and "skipped q" in out and "skipped meta" in out


def test_a_model_on_the_meta_device_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="meta"):
        paramedit.open_session(nn.Linear(3, 2, device="meta"))


# ---------------------------------------------------------------- odd files


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (SIGALRM interrupts blocking opens)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def expect_clear(path: Path | str, *needles: str) -> CheckpointError:
    with within(20), pytest.raises(CheckpointError) as info:
        paramedit.open_session(None, path)
    for needle in needles:
        assert needle in info.value.message, info.value.message
    assert "Traceback" not in info.value.message
    return info.value


def torch_zip(state: dict, change) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zin, zipfile.ZipFile(out, "w") as zout:
        for name in zin.namelist():
            data = change(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)
    return out.getvalue()


def test_zips_that_are_not_torch_archives(tmp_path) -> None:
    (tmp_path / "empty.pt").write_bytes(torch_zip({}, lambda n, d: None))
    expect_clear(tmp_path / "empty.pt", "not a torch.save")
    (tmp_path / "random.pt").write_bytes(torch_zip({"w": torch.ones(3)}, lambda n, d: os.urandom(64) if n.endswith(
        "data.pkl") else d))  # fmt: skip
    expect_clear(tmp_path / "random.pt")
    (tmp_path / "nostorage.pt").write_bytes(torch_zip({"w": torch.ones(3)}, lambda n, d: None if "/data/" in n else d))
    expect_clear(tmp_path / "nostorage.pt", "data/0")


def test_a_storage_record_cut_short_is_an_error_not_garbage(tmp_path) -> None:
    short = torch_zip({"w": torch.ones(3)}, lambda n, d: d[:4] if n.endswith("/data/0") else d)
    (tmp_path / "short.pt").write_bytes(short)
    expect_clear(tmp_path / "short.pt", "data/0")


def test_shard_indexes_that_point_nowhere_useful(tmp_path) -> None:
    save_file({"a": torch.ones(2)}, tmp_path / "model-00001-of-00001.safetensors")
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "model.safetensors.index.json"}}))
    expect_clear(index, "not a checkpoint file")
    index.write_text(json.dumps({"weight_map": {"a": "model-00001-of-00001.safetensors", "b": "gone.safetensors"}}))
    expect_clear(index, "gone.safetensors", "missing")
    index.write_text(json.dumps({"weight_map": {"a": 7}}))
    expect_clear(index, "must name a shard file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_pipes_and_devices_never_hang(tmp_path) -> None:
    os.mkfifo(tmp_path / "model.pt")
    expect_clear(tmp_path / "model.pt", "not a regular file")
    folder = tmp_path / "hf"
    folder.mkdir()
    os.mkfifo(folder / "model.safetensors")
    expect_clear(folder, "no checkpoint found")
    if Path("/dev/zero").exists():
        expect_clear("/dev/zero", "not a regular file")


def test_loader_errors_are_checkpoint_errors_for_every_cut_of_a_nested_file(tmp_path) -> None:
    """Lightning-style nesting, cut at many offsets: never anything but a CheckpointError."""
    buffer = io.BytesIO()
    torch.save({"state_dict": {"model.w": torch.arange(64.0)}, "epoch": 3, "hparams": {"lr": 0.1}}, buffer)
    data = buffer.getvalue()
    for cut in range(0, len(data), max(1, len(data) // 40)):
        path = tmp_path / f"cut{cut}.ckpt"
        path.write_bytes(data[:cut])
        with within(20):
            try:
                load_checkpoint(path)
            except ParameditError as exc:
                assert isinstance(exc, CheckpointError), exc


def test_model_file_with_tabs_and_bom_is_fine(tmp_path) -> None:
    """Not misbehaviour, but odd text: a BOM and CRLF line ends must not become a confusing error."""
    path = tmp_path / "crlf.py"
    path.write_bytes(b"\xef\xbb\xbf" + textwrap.dedent("""
        from torch import nn
        class Net(nn.Linear):
            def __init__(self):
                super().__init__(2, 2)
    """).replace("\n", "\r\n").encode())
    assert paramedit.open_session(f"{path}:Net").names() == ["weight", "bias"]


# ---------------------------------------------------------------- repeated checks (issue 4)


def test_a_check_after_a_check_frees_the_old_gradients_before_the_new_ones_exist() -> None:
    """Keeping the last check's gradients alive during the next made it ~1.6x a bare backward."""
    import weakref

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    s = paramedit.open_session(net)
    x = torch.randn(3, 4)
    s.run_backward(inputs=(x,))
    old = [weakref.ref(p.grad) for p in net.parameters()]
    alive_in_forward: list[int] = []
    net[0].register_forward_hook(lambda *_: alive_in_forward.append(sum(r() is not None for r in old)))
    assert s.run_backward(inputs=(x,)).ok
    assert alive_in_forward == [0]  # none of the old gradients exists while the new ones are made
    # A user's own gradients (not left by a check) are still kept and restored on failure.
    user = {n: torch.full_like(p, 0.5) for n, p in net.named_parameters()}
    for n, p in net.named_parameters():
        p.grad = user[n]
    with pytest.raises(BackwardCheckError):
        s.run_backward(inputs=(torch.randn(3, 5),))  # wrong width: forward raises
    assert all(p.grad is user[n] for n, p in net.named_parameters())


def test_a_failing_check_after_a_check_leaves_no_stale_gradients() -> None:
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    s = paramedit.open_session(net)
    s.run_backward(inputs=(torch.randn(3, 4),))
    with pytest.raises(BackwardCheckError):
        s.run_backward(inputs=(torch.randn(3, 5),))
    assert net.weight.grad is None and net.bias.grad is None  # as documented: dropped, not restored


@pytest.mark.parametrize("change", ["accumulate", "scale", "zero"])
def test_gradients_the_user_changed_after_a_check_are_theirs_and_restored(change) -> None:
    """Found by a review: accumulating into a check's gradient keeps its id; it must still be kept."""
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    s = paramedit.open_session(net)
    s.run_backward(inputs=(torch.randn(3, 4),))
    if change == "accumulate":
        net(torch.randn(3, 4)).sum().backward()  # AccumulateGrad adds into the same tensor
    elif change == "scale":
        net.weight.grad.mul_(0.5)
    else:
        net.zero_grad(set_to_none=False)
    before = {n: (p.grad, p.grad.clone()) for n, p in net.named_parameters()}
    with pytest.raises(BackwardCheckError):
        s.run_backward(inputs=(torch.randn(3, 5),))
    for n, p in net.named_parameters():
        if change == "scale" and n == "bias":
            continue  # untouched since the check: the check's own, dropped as documented
        assert p.grad is before[n][0] and torch.equal(p.grad, before[n][1]), n
