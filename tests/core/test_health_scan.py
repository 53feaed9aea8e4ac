"""The health scan (issue 10): every NaN, Inf, outlier and dead row found with its exact place,
nothing found on a fresh initialisation, every value read once through the file."""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

import paramedit
from paramedit.core.analysis.chunked_reads import ChunkReader
from paramedit.core.analysis.health_scan import OUTLIER_SIGMAS, ScanCancelled, scan_tensors

transformers = pytest.importorskip("transformers")


def kinds(report, tensor=None):
    return {(f.tensor, f.kind, f.index, f.count) for f in report.findings
            if f.severity != "info" and (tensor is None or f.tensor == tensor)}


def test_a_fresh_gpt2_small_gives_no_outlier_and_no_warning():
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config())  # 124M, normal_(0, 0.02) init
    report = paramedit.open_session(model).scan()
    assert report.tensors_scanned > 100
    assert [f for f in report.findings if f.severity != "info"] == []
    # Zero-initialised biases and LayerNorm weights are constant, which is worth knowing, not a warning.
    constant = {f.tensor: f.value for f in report.findings if f.kind == "constant"}
    assert constant["transformer.h.0.ln_1.weight"] == 1.0 and constant["transformer.h.0.attn.c_attn.bias"] == 0.0


def planted_gpt2(tmp_path):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=3))
    with torch.no_grad():
        model.transformer.wte.weight[31337, 17] = math.nan
        model.transformer.h[2].mlp.c_fc.weight[100, 517] = 1e4
        model.transformer.h[1].mlp.c_proj.weight[777, :] = 0
        model.transformer.h[0].attn.c_attn.weight[5, 6] = -math.inf
    folder = tmp_path / "gpt2"
    model.save_pretrained(folder)
    return folder


def test_the_three_planted_faults_and_an_inf_are_found_where_they_are(tmp_path, capsys):
    folder = planted_gpt2(tmp_path)
    import json

    from paramedit.cli import main

    code = main(["scan", str(folder), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1  # a NaN is an error
    found = {(f["tensor"], f["kind"], f["severity"], f["index"], f["count"]) for f in data["findings"]
             if f["severity"] != "info"}
    assert found == {
        ("transformer.wte.weight", "nan", "error", "[31337, 17]", 1),
        ("transformer.h.0.attn.c_attn.weight", "inf", "error", "[5, 6]", 1),
        ("transformer.h.2.mlp.c_fc.weight", "outlier", "warning", "[100, 517]", 1),
        ("transformer.h.1.mlp.c_proj.weight", "dead_row", "warning", "[777, :]", 1),
    }
    values = {f["index"]: f["value"] for f in data["findings"]}
    assert values["[100, 517]"] == 1e4 and values["[31337, 17]"] is None
    assert [f["severity"] for f in data["findings"]] == sorted(
        (f["severity"] for f in data["findings"]), key=["error", "warning", "info"].index)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 300), cols=st.integers(32, 300), dist=st.sampled_from(["normal", "uniform", "shifted"]),
       seed=st.integers(0, 2**16), sign=st.sampled_from([1.0, -1.0]))
def test_one_value_100x_its_tensors_rms_is_always_found(rows, cols, dist, seed, sign):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(rows, cols, generator=g) if dist != "uniform" else torch.rand(rows, cols, generator=g) * 2 - 1
    if dist == "shifted":
        t = t * 0.1 + 3.0
    rms = float(t.pow(2).mean().sqrt())
    r, c = int(torch.randint(rows, (), generator=g)), int(torch.randint(cols, (), generator=g))
    t[r, c] = sign * 100 * rms
    report = scan_tensors({"w": t})
    outliers = [f for f in report.findings if f.kind == "outlier"]
    assert outliers and outliers[0].count == 1 and outliers[0].index == f"[{r}, {c}]"


def test_chunk_boundaries_change_nothing():
    torch.manual_seed(0)
    t = torch.randn(1000, 37)
    t[998, 3] = math.nan
    t[421, :] = 0
    t[:, 11] = 0
    t[0, 5] = 500.0
    t[999, 36] = math.inf
    whole = scan_tensors({"w": t})
    reader = ChunkReader(chunk_elements=37 * 7 + 5)  # blocks of 7 rows: boundaries everywhere
    from paramedit.core.analysis import health_scan

    chunked = health_scan._TensorScan("w", t, reader, None).run(lambda: None)
    assert {(f.kind, f.index, f.count) for f in whole.findings} == {(f.kind, f.index, f.count) for f in chunked}
    assert {(f.kind, f.index, f.count) for f in chunked} == {
        ("nan", "[998, 3]", 1), ("inf", "[999, 36]", 1), ("dead_row", "[421, :]", 1),
        ("dead_column", "[:, 11]", 1), ("outlier", "[0, 5]", 1)}


def test_dead_rows_only_in_tensors_that_are_not_zero_and_padding_idx_is_info():
    emb = nn.Embedding(10, 4, padding_idx=3)  # row 3 is zero by design
    with torch.no_grad():
        emb.weight[7] = 0
    model = nn.Sequential(emb, nn.Linear(4, 4))
    with torch.no_grad():
        model[1].weight.zero_()
    report = paramedit.open_session(model).scan()
    by = {(f.tensor, f.kind, f.severity, f.index) for f in report.findings}
    assert ("0.weight", "dead_row", "info", "[3, :]") in by
    assert ("0.weight", "dead_row", "warning", "[7, :]") in by
    assert ("1.weight", "constant", "info", "[...]") in by
    assert not any(f.tensor == "1.weight" and f.kind.startswith("dead") for f in report.findings)


def test_n_d_tensors_name_their_rows_and_columns_with_every_dimension():
    w = torch.randn(6, 4, 3, 3)
    w[2] = 0
    w[:, 1] = 0
    report = scan_tensors({"conv.weight": w})
    assert kinds(report) == {("conv.weight", "dead_row", "[2, :, :, :]", 1),
                             ("conv.weight", "dead_column", "[:, 1, :, :]", 1)}


def resident_pages(t: torch.Tensor) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    start, nbytes = t.data_ptr(), t.numel() * t.element_size()
    first, last = start // page, (start + nbytes - 1) // page
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(8 * first)
        raw = f.read(8 * (last - first + 1))
    return sum(1 for k in range(0, len(raw), 8) if int.from_bytes(raw[k:k + 8], "little") >> 63)


@pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"), reason="needs Linux's pagemap")
def test_a_mapped_checkpoint_is_read_through_its_file_not_made_resident(tmp_path):
    torch.manual_seed(0)
    save_file({"big": torch.randn(4096, 1024), "small": torch.randn(10)}, tmp_path / "m.safetensors")
    s = paramedit.open_session(None, tmp_path / "m.safetensors")
    big = s.tensor("big")
    before = resident_pages(big)
    report = s.scan()
    assert report.bytes_read == (4096 * 1024 + 10) * 4  # every value read once
    assert resident_pages(big) - before < 64  # of 4096 pages: the scan did not fault the mapping in
    # An edit (a copied-on-write page) is read from memory: the scan sees the new value.
    s.stage("big", "[100, 7]", math.nan)
    s.commit()
    assert ("big", "nan", "[100, 7]", 1) in kinds(s.scan())


def test_cancel_stops_the_scan():
    tensors = {f"t{i}": torch.randn(100, 100) for i in range(5)}
    seen = []
    with pytest.raises(ScanCancelled):
        scan_tensors(tensors, progress=lambda i, n, name: seen.append(name), cancelled=lambda: len(seen) >= 2)
    assert len(seen) == 2


def test_only_globs_and_a_glob_that_matches_nothing(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 40), nn.Linear(40, 40))
    with torch.no_grad():
        model[0].weight[1, 2] = math.nan
        model[1].weight[3, 4] = math.nan
    s = paramedit.open_session(model)
    assert {f.tensor for f in s.scan(["1.*"]).findings if f.kind == "nan"} == {"1.weight"}
    with pytest.raises(paramedit.ParameditError, match="matches no tensor"):
        s.scan(["decoder.*"])


def test_integer_and_half_tensors(tmp_path):
    tensors = {"steps": torch.tensor(3), "h": torch.randn(64, 64).half(), "b": torch.randn(64, 64).bfloat16()}
    tensors["h"][1, 1] = math.inf
    tensors["b"][2, 2] = 1e4
    report = scan_tensors(tensors)
    assert "steps" in report.skipped
    assert kinds(report) == {("h", "inf", "[1, 1]", 1), ("b", "outlier", "[2, 2]", 1)}


def test_the_outlier_threshold_is_what_the_docs_say():
    assert OUTLIER_SIGMAS == 20.0
    t = torch.randn(10_000, generator=torch.Generator().manual_seed(1))
    t[0] = 19.0  # ~19 sigma: not an outlier
    t[1] = 25.0  # ~25 sigma: an outlier
    found = [f for f in scan_tensors({"v": t}).findings if f.kind == "outlier"]
    assert [(f.index, f.count) for f in found] == [("[1]", 1)]
