"""The three classic ways of assigning values to parameters, done right (issue 2).

Each goes end to end through the Python API and through ``paramedit apply``; afterwards the
parameter is the same object and a backward pass still reaches it.
"""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file
from torch import nn

import paramedit
from paramedit.cli import main


def _assert_still_learning(session, name):
    report = session.run_backward(inputs=(torch.randn(2, session.model.fc.in_features),))
    grads = {p.name: p for p in report.params}
    assert grads[name].has_grad and grads[name].finite
    assert report.replaced == []


def test_set_all_weights_to_ones_in_place(models_py, linear_ckpt):
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    weight = s.tensor("fc.weight")
    ptr = weight.data_ptr()
    s.stage("fc.weight", "[...]", 1.0)
    assert not torch.equal(weight, torch.ones(3, 5)), "staging must not write"
    checks = s.commit()
    assert s.model.fc.weight is weight and isinstance(weight, nn.Parameter)
    assert weight.data_ptr() == ptr
    assert torch.equal(weight.detach(), torch.ones(3, 5))
    assert [c.name for c in checks] == ["fc.weight"] and all(c.ok for c in checks)
    _assert_still_learning(s, "fc.weight")


def test_set_bias_to_arange_values(models_py, linear_ckpt):
    s = paramedit.open_session(f"{models_py}:Net", linear_ckpt)
    bias = s.tensor("fc.bias")
    weight_before = s.tensor("fc.weight").detach().clone()
    s.stage("fc.bias", "[:]", [0, 1, 2])
    s.commit()
    assert s.model.fc.bias is bias
    assert bias.tolist() == [0.0, 1.0, 2.0]
    assert torch.equal(s.tensor("fc.weight"), weight_before)
    _assert_still_learning(s, "fc.bias")


def test_copy_first_rows_of_pretrained_layer_into_smaller_layer(models_py, tmp_path):
    torch.manual_seed(1)
    pretrained = nn.Linear(10, 5)
    src = tmp_path / "pretrained.pt"
    torch.save({"fc.weight": pretrained.weight.detach(), "fc.bias": pretrained.bias.detach()}, src)
    small = paramedit.open_session(f"{models_py}:Small")
    weight = small.tensor("fc.weight")
    bias_before = small.tensor("fc.bias").detach().clone()
    small.stage_copy("fc.weight", "[...]", source=str(src), source_name="fc.weight", source_index="[:3, :]")
    small.commit()
    assert small.model.fc.weight is weight
    assert torch.equal(weight.detach(), pretrained.weight.detach()[:3])
    assert torch.equal(small.tensor("fc.bias"), bias_before), "the bias stays as it was"
    _assert_still_learning(small, "fc.weight")


def test_the_three_examples_through_paramedit_apply(models_py, linear_ckpt, tmp_path):
    torch.manual_seed(2)
    pretrained = nn.Linear(10, 5)
    src = tmp_path / "pretrained.safetensors"
    from safetensors.torch import save_file

    save_file({"fc.weight": pretrained.weight.detach().contiguous(), "fc.bias": pretrained.bias.detach()}, src)
    log = tmp_path / "edits.json"
    log.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": [
        {"op": "set", "target": "fc.weight", "index": "[...]", "value": 1.0},
        {"op": "set", "target": "fc.bias", "index": "[:]", "value": [0, 1, 2]},
    ]}))
    out = tmp_path / "edited.safetensors"
    assert main(["apply", str(linear_ckpt), str(log), "-o", str(out), "--model", f"{models_py}:Net"]) == 0
    saved = load_file(out)
    assert torch.equal(saved["fc.weight"], torch.ones(3, 5))
    assert saved["fc.bias"].tolist() == [0.0, 1.0, 2.0]
    # and the result loads into the model and learns
    s = paramedit.open_session(f"{models_py}:Net", out)
    assert s.report.clean
    _assert_still_learning(s, "fc.weight")

    # third example: a partial copy into a new Linear(10, 3) checkpoint; source relative to the log
    small_ckpt = tmp_path / "small.pt"
    fresh = nn.Linear(10, 3)
    torch.save({"fc.weight": fresh.weight.detach(), "fc.bias": fresh.bias.detach()}, small_ckpt)
    copy_log = tmp_path / "copy.json"
    copy_log.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": [
        {"op": "copy", "target": "fc.weight", "source": "pretrained.safetensors",
         "source_name": "fc.weight", "source_index": "[:3, :]"},
    ]}))
    out2 = tmp_path / "small_edited.pt"
    assert main(["apply", str(small_ckpt), str(copy_log), "-o", str(out2), "--model", f"{models_py}:Small"]) == 0
    saved2 = torch.load(out2, weights_only=True)
    assert torch.equal(saved2["fc.weight"], pretrained.weight.detach()[:3])
    assert torch.equal(saved2["fc.bias"], fresh.bias.detach())
