"""Real torch.nn architectures and a Hugging Face model: load, edit in place, gradients flow."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import paramedit
from paramedit.cli import main


def _roundtrip(model: nn.Module, tmp_path, inputs, edit_name: str):
    """Save a model's state dict, reopen it with a fresh instance, edit one region, check grads."""
    ckpt = tmp_path / "model.pt"
    torch.save(model.state_dict(), ckpt)
    fresh = copy_architecture(model)
    s = paramedit.open_session(fresh, ckpt)
    assert s.report.clean, s.report.summary()
    for name, t in model.state_dict().items():
        assert torch.equal(s.model.state_dict()[name], t), name
    param = s.tensor(edit_name)
    ptr = param.data_ptr()
    s.stage(edit_name, "[0]", 0.0)
    s.commit()
    assert s.tensor(edit_name) is param and param.data_ptr() == ptr
    assert torch.count_nonzero(param.detach()[0]) == 0
    report = s.run_backward(inputs=inputs)
    assert report.ok, report.verdict()
    return s, report


def copy_architecture(model: nn.Module) -> nn.Module:
    import copy

    fresh = copy.deepcopy(model)
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    return fresh


def test_transformer(tmp_path):
    torch.manual_seed(0)
    model = nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=32, dropout=0.0, batch_first=True)
    src, tgt = torch.randn(2, 5, 16), torch.randn(2, 4, 16)
    _s, report = _roundtrip(model, tmp_path, (src, tgt), "encoder.layers.0.self_attn.in_proj_weight")
    assert len(report.trainable) == len(list(model.parameters()))


def test_lstm(tmp_path):
    torch.manual_seed(0)
    model = nn.LSTM(input_size=4, hidden_size=6, num_layers=2, batch_first=True)
    _roundtrip(model, tmp_path, (torch.randn(3, 7, 4),), "weight_hh_l1")


def test_conv_batchnorm_with_int64_buffer(models_py, tmp_path):
    s = paramedit.open_session(f"{models_py}:ConvBN")
    infos = s.infos()
    assert infos["bn.num_batches_tracked"].kind == "buffer"
    assert infos["bn.num_batches_tracked"].dtype == torch.int64
    assert infos["bn.running_mean"].kind == "buffer"
    running = s.tensor("bn.running_mean").detach().clone()
    report = s.run_backward(inputs=(torch.randn(2, 1, 6, 6),), train_mode=True)
    assert report.ok
    assert torch.equal(s.tensor("bn.running_mean"), running), "the check must not change BN statistics"
    assert s.model.training is True, "mode restored"


def test_frozen_parameters_are_marked_and_not_required_to_get_grads(models_py):
    s = paramedit.open_session(f"{models_py}:Frozen")
    infos = s.infos()
    assert infos["backbone.weight"].frozen and not infos["head.weight"].frozen
    report = s.run_backward(inputs=(torch.randn(2, 4),))
    assert report.ok
    assert {p.name for p in report.trainable} == {"head.weight", "head.bias"}


def test_tied_weights_shown_once_and_edit_lands_on_both(models_py):
    s = paramedit.open_session(f"{models_py}:Tied")
    assert "out.weight" not in s.names()
    assert s.infos()["embed.weight"].aliases == ["out.weight"]
    s.stage("out.weight", "[3, :]", 2.0)  # edit through the alias
    s.commit()
    assert torch.equal(s.model.embed.weight[3].detach(), torch.full((4,), 2.0))
    assert s.model.out.weight is s.model.embed.weight
    report = s.run_backward(inputs=(torch.tensor([[1, 2, 3]]),))
    assert report.ok and [p.name for p in report.params] == ["embed.weight"]


def test_unused_parameter_makes_check_exit_1_and_names_it(models_py, capsys):
    code = main(["check", "--model", f"{models_py}:WithUnused", "--input", "randn(2, 4)", "--json"])
    import json

    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["missing_grad"] == ["unused.weight", "unused.bias"]


def test_replaced_parameter_is_caught(models_py):
    s = paramedit.open_session(f"{models_py}:Net")
    # nn.Module refuses a plain tensor in a parameter slot, so the classic mistake is del + assign
    del s.model.fc.weight
    s.model.fc.weight = torch.ones(3, 5)
    report = s.run_backward(inputs=(torch.randn(2, 5),))
    assert report.replaced == ["fc.weight"]
    assert not report.ok


def test_hugging_face_gpt2_with_tied_head(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    folder = tmp_path / "gpt2"
    model.save_pretrained(folder)
    fresh = transformers.GPT2LMHeadModel(config)
    s = paramedit.open_session(fresh, folder)
    assert s.report.missing == [], s.report.summary()
    assert ("lm_head.weight" in [a for a, _ in s.report.tied]) or "lm_head.weight" in s.report.key_map
    assert s.infos()["transformer.wte.weight"].aliases == ["lm_head.weight"]
    assert torch.equal(fresh.transformer.wte.weight, model.transformer.wte.weight)
    wte = fresh.transformer.wte.weight
    s.stage("lm_head.weight", "[5, :]", 0.0)
    s.commit()
    assert fresh.transformer.wte.weight is wte and fresh.lm_head.weight is wte
    assert torch.count_nonzero(wte[5]) == 0
    report = s.run_backward(inputs=(torch.randint(0, 100, (1, 8)),))
    assert report.ok, report.verdict()
