"""Review of issue 9 in the window: notes a user must read are shown, a check on weights not from
the checkpoint is not green, saving edits the file cannot hold asks and then saves, and inputs are
remembered per model spec *and* its arguments."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import paramedit
from paramedit.qt import prompts
from paramedit.qt.backward_input_controller import model_key
from paramedit.qt.grad_status import GradStatus, verdict_status
from tests.qt.window_helpers import action

transformers = pytest.importorskip("transformers")


def test_a_folder_opened_as_tensors_alone_says_why_in_a_banner(make_window, qtbot, tmp_path):
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64,
                                                         n_positions=16)).save_pretrained(tmp_path / "g")
    window = make_window(paramedit.open_session(None, tmp_path / "g", architecture=False))
    banner = window.report_banner
    qtbot.waitUntil(banner.isVisible, timeout=2000)
    assert "names the architecture GPT2LMHeadModel" in banner.title.text()
    assert banner.property("notice") is True
    window2 = make_window(paramedit.open_session(None, tmp_path / "g"))  # built: nothing to say
    assert not window2.report_banner.isVisible()


def test_a_check_on_weights_not_from_the_checkpoint_is_amber_not_green(tmp_path):
    torch.save({"0.weight": torch.ones(3, 3)}, tmp_path / "part.pt")
    s = paramedit.open_session(nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1)), tmp_path / "part.pt")
    report = s.run_backward(inputs=(torch.randn(2, 3),))
    assert report.ok and report.not_loaded
    assert verdict_status(report) is GradStatus.ZERO  # the amber of "not a clean pass"


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_saving_edits_the_file_cannot_hold_asks_then_saves_the_rest(make_window, qtbot, tmp_path, monkeypatch):
    model = _mlp()
    torch.save({"0.weight": model[0].weight.detach().clone(), "0.bias": model[0].bias.detach().clone()},
               tmp_path / "part.pt")
    session = paramedit.open_session(_mlp(), tmp_path / "part.pt")
    session.stage("2.bias", "[0]", 9.0)  # a tensor the file does not hold
    session.stage("0.bias", "[0]", 0.5)
    session.commit()
    window = make_window(session)
    out = tmp_path / "out.safetensors"
    asked: list[list[str]] = []
    monkeypatch.setattr(prompts, "ask_save_path", lambda *a: str(out))
    monkeypatch.setattr(prompts, "ask_save_despite_warnings",
                        lambda parent, path, warnings: asked.append(warnings) or True)
    action(window, "saveAction").trigger()
    qtbot.waitUntil(lambda: not window.busy and out.exists(), timeout=20000)
    assert any("2.bias" in w and "NOT be saved" in w for w in asked[0])
    assert sorted(load_file(str(out))) == ["0.bias", "0.weight"]
    assert float(load_file(str(out))["0.bias"][0]) == 0.5


def test_inputs_are_remembered_per_spec_and_arguments():
    s = paramedit.open_session(_mlp())
    spec = "transformers:AutoModelForCausalLM.from_pretrained"
    a = model_key(s, spec, {"pretrained_model_name_or_path": "gpt2"})
    b = model_key(s, spec, {"pretrained_model_name_or_path": "llama"})
    assert a != b and model_key(s, spec) == spec
