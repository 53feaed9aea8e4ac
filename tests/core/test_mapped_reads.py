"""Samples of mapped tensors are read through the file, never by faulting the tensor in (issue 4).

A strided sample of a mapped tensor (the heatmap of an embedding) would fault in a page-cache
folio around every sampled row; ``session.preview`` reads such samples with ``pread`` instead,
and reads from memory any row whose pages were written since the file was mapped. The costs
asserted are bytes read and resident pages of the file's mapping, not times.
"""

from __future__ import annotations

import os
import select
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import paramedit
from paramedit.core.checkpoints import mapped_reads
from paramedit.core.checkpoints.mapped_reads import read_through_file
from paramedit.core.checkpoints.saving import save_tensors

pytestmark = pytest.mark.skipif(mapped_reads._PAGEMAP is None, reason="needs /proc/self/pagemap (Linux)")


@pytest.fixture(params=["safetensors", "pt"])
def ckpt(tmp_path: Path, request) -> Path:
    """The same tensors as a safetensors file (mapped by paramedit) and as a torch.save zip
    (mapped by ``torch.load(mmap=True)``)."""
    g = torch.Generator().manual_seed(0)
    tensors = {
        "emb": torch.randn(4000, 96, generator=g),
        "half": torch.randn(300, 64, generator=g).to(torch.bfloat16),
        "ids": torch.randint(-9, 9, (500, 40), generator=g),
        "flags": torch.rand(200, 30, generator=g) > 0.5,
        "conv": torch.randn(16, 8, 5, 5, generator=g),
    }
    path = tmp_path / f"big.{request.param}"
    if request.param == "pt":
        torch.save(tensors, path)
    else:
        save_file(tensors, str(path))
    return path


@pytest.fixture
def preads(monkeypatch) -> list[int]:
    """Sizes of every pread of a checkpoint (not of /proc/self/pagemap)."""
    sizes: list[int] = []
    real = os.pread

    def counting(fd: int, n: int, offset: int) -> bytes:
        if fd != mapped_reads._PAGEMAP:
            sizes.append(n)
        return real(fd, n, offset)

    monkeypatch.setattr(mapped_reads.os, "pread", counting)
    return sizes


CASES = [
    ("emb", "[::37, ::3]"),
    ("emb", "[5:4000:100, 10:90]"),
    ("half", "[::7, ::2]"),
    ("ids", "[::11, 1::4]"),
    ("flags", "[::3, ::5]"),
    ("conv", "[::2, 3, ::2, 1]"),
    ("conv", "[:, :, 2, ::2]"),
]


@pytest.mark.parametrize(("name", "index"), CASES)
def test_a_sample_read_through_the_file_equals_the_tensor(ckpt, preads, name, index) -> None:
    s = paramedit.open_session(checkpoint=ckpt)
    values, mask = s.preview(name, index)
    expected = s.tensor(name).detach()[s.region(name, index).index]
    assert values.dtype == expected.dtype and torch.equal(values, expected)
    assert not mask.any()
    assert preads, "the sample was read through the mapping, not the file"


def test_bytes_read_are_the_sampled_rows_not_the_tensor(ckpt, preads) -> None:
    s = paramedit.open_session(checkpoint=ckpt)
    s.preview("emb", "[::40, ::3]")
    rows, row_span = 100, (95 // 3 * 3 + 1) * 4  # every 3rd of 96 float32s: 94 elements' span
    assert len(preads) == rows and set(preads) == {row_span}
    assert sum(preads) < 0.04 * 4000 * 96 * 4


def test_a_transposed_slice_reads_along_the_file(ckpt, preads) -> None:
    s = paramedit.open_session(checkpoint=ckpt)
    t = s.tensor("emb").detach()
    view = t[::50, ::2].t()  # rows are the tensor's columns
    out = read_through_file(view, s.checkpoint.mapped_files)
    assert out is not None and torch.equal(out, view)
    assert len(preads) == 80  # one per tensor row of the sample, not one per element


def test_rows_written_since_mapping_are_read_from_memory(ckpt, preads) -> None:
    s = paramedit.open_session(checkpoint=ckpt)
    s.stage("emb", "[74, 6]", 123.5)
    s.commit()
    values, _ = s.preview("emb", "[::37, ::3]")
    assert values[2, 2] == 123.5  # row 74 was copied on write: the file still has the old value
    assert torch.equal(values, s.tensor("emb").detach()[::37, ::3])
    assert len(preads) < 4000 // 37 + 1  # that row (at least) came from memory
    # A write that bypasses paramedit (a notebook's in-place op) is seen the same way.
    with torch.no_grad():
        s.tensor("emb")[111, 0] = -7.0
    values, _ = s.preview("emb", "[::37, ::3]")
    assert values[3, 0] == -7.0


def test_staged_values_are_overlaid_on_a_file_read(ckpt) -> None:
    s = paramedit.open_session(checkpoint=ckpt)
    s.stage("emb", "[0, :]", 9.0)
    values, mask = s.preview("emb", "[::37, ::3]")
    assert (values[0] == 9.0).all() and mask[0].all() and not mask[1:].any()


def test_a_file_replaced_on_disk_does_not_change_what_the_session_shows(ckpt) -> None:
    s = paramedit.open_session(checkpoint=ckpt)
    assert s.checkpoint.mapped_files, "the checkpoint's mapping was not found"
    before = s.tensor("emb").detach()[::37, ::3].clone()
    s.save(ckpt)  # renames a new file over the path: the session keeps reading the one it mapped
    other = ckpt.with_name("other" + ckpt.suffix)
    save_tensors({"emb": torch.zeros(4000, 96)}, other)
    os.replace(other, ckpt)
    values, _ = s.preview("emb", "[::37, ::3]")
    assert torch.equal(values, before)


def test_without_pagemap_nothing_is_read_through_the_file(ckpt, preads, monkeypatch) -> None:
    monkeypatch.setattr(mapped_reads, "_PAGEMAP", None)
    s = paramedit.open_session(checkpoint=ckpt)
    values, _ = s.preview("emb", "[::37, ::3]")
    assert torch.equal(values, s.tensor("emb").detach()[::37, ::3])
    assert not preads


def test_dense_regions_and_copied_tensors_use_memory(ckpt, preads) -> None:
    s = paramedit.open_session(checkpoint=ckpt)
    s.preview("emb", "[10:20]")  # contiguous: one plain copy
    s.preview("emb", "[:, 5]")  # one column: its span is the whole tensor
    assert not preads
    assert read_through_file(torch.randn(50, 50)[::2], s.checkpoint.mapped_files) is None  # not mapped


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_sample_of_a_mapped_embedding_keeps_it_mostly_unmapped(tmp_path, suffix) -> None:
    """The cost in pages of the file's mapping: a 400-row sample leaves the rest unmapped."""
    path = tmp_path / f"emb{suffix}"
    save_tensors({"emb": torch.randn(40000, 256)}, path)  # 41 MB
    s = paramedit.open_session(checkpoint=path)
    resident_before = _resident_bytes_of(path)
    values, _ = s.preview("emb", "[::100, ::2]")
    assert values.shape == (400, 128)
    assert _resident_bytes_of(path) - resident_before < 2 << 20


def _resident_bytes_of(path: Path) -> int:
    total, current = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and ":" not in fields[0]:
            current = line.endswith(str(path))
        elif current and fields[0] == "Rss:":
            total += int(fields[1]) * 1024
    return total


def test_an_expanded_tensor_is_read_from_memory(tmp_path, preads) -> None:
    """Found by a review: torch.save keeps a broadcast tensor's zero stride; reading its rows
    through the file raised "slice step cannot be zero"."""
    path = tmp_path / "expanded.pt"
    row = torch.randn(1, 96)
    torch.save({"b": row.expand(4000, 96), "c": torch.randn(6, 1, 50)}, path)
    s = paramedit.open_session(checkpoint=path)
    for name, index in (("b", "[0:64, 0:16]"), ("b", "[::37, ::3]"), ("c", "[::2, :, ::3]"), ("c", "[:, 0, ::2]")):
        values, _ = s.preview(name, index)
        assert torch.equal(values, s.tensor(name).detach()[s.region(name, index).index]), (name, index)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_checks_its_own_pages(ckpt) -> None:
    """Found by a review: the child inherited the parent's pagemap and missed its own writes."""
    s = paramedit.open_session(checkpoint=ckpt)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write, then report whether a preview sees it
        try:
            os.close(read)
            with torch.no_grad():
                s.tensor("emb")[37, :] = 7.0
            values, _ = s.preview("emb", "[::37, ::3]")
            os.write(write, b"ok" if bool((values[1] == 7.0).all()) else b"stale")
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)  # never hang the suite on a stuck child
    answer = os.read(read, 16) if ready else b"(no answer in 60 s)"
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read)
    assert answer == b"ok"


def test_a_file_renamed_over_the_path_while_opening_is_not_read_for_the_old_one(tmp_path) -> None:
    path = tmp_path / "a.safetensors"
    save_file({"w": torch.randn(10, 10)}, str(path))
    mapped_stat = path.stat()
    save_file({"w": torch.zeros(10, 10)}, str(tmp_path / "b.safetensors"))
    os.replace(tmp_path / "b.safetensors", path)
    with pytest.raises(OSError, match="changed while it was being opened"):
        mapped_reads.MappedFile(path, torch.UntypedStorage(8), mapped=mapped_stat)


def _resident(t: torch.Tensor) -> int:
    import os

    page = os.sysconf("SC_PAGE_SIZE")
    first, last = t.data_ptr() // page, (t.data_ptr() + t.numel() * t.element_size() - 1) // page
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(8 * first)
        raw = f.read(8 * (last - first + 1))
    return sum(1 for k in range(0, len(raw), 8) if int.from_bytes(raw[k:k + 8], "little") >> 63)


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="needs Linux's pagemap")
def test_a_partial_check_does_not_leave_the_frozen_weights_resident_and_keeps_edits(tmp_path):
    """Issue 11: check --only 'model.layers.31.*' on a 7B model made all 13 GB resident."""
    from safetensors.torch import save_file

    import paramedit

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 8))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "m.safetensors"))
    (tmp_path / "spec.py").write_text(
        "from torch import nn\n\ndef make():\n    return nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), "
        "nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 8))\n")
    s = paramedit.open_session(f"{tmp_path / 'spec.py'}:make", tmp_path / "m.safetensors")
    assert s.report.assigned
    s.stage("0.weight", "[3, 5]", 42.0)  # an edit in a page of layer 0: copied on write
    s.commit()
    x = (torch.randn(2, 1024),)
    s.run_backward(inputs=x)  # a full check: every weight is read, and stays resident
    full = _resident(s.tensor("2.weight"))
    report = s.run_backward(inputs=x, only=["4.*"])
    assert report.ok and [p.name for p in report.params] == ["4.weight", "4.bias"]
    assert full > 200 and _resident(s.tensor("2.weight")) < full // 4  # 4 MB of layer 2: dropped after its forward
    assert float(s.tensor("0.weight")[3, 5]) == 42.0  # the edited page was left alone
