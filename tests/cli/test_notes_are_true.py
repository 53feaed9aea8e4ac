"""Issue 9, reproduction 9: notes that mislead. Every note states what happened, and every
hint names the fix."""

from __future__ import annotations

import json
import shlex

import pytest
import torch
from torch import nn

import paramedit
from paramedit.cli import main
from paramedit.core.errors import CheckpointError, EditError, ModelSpecError, UntrustedCheckpointError
from tests import zoo_models


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


def _tiny_llama(transformers, folder):
    config = transformers.LlamaConfig(num_hidden_layers=1, hidden_size=16, intermediate_size=32,
                                      num_attention_heads=2, num_key_value_heads=1, vocab_size=40,
                                      max_position_embeddings=32)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return config


def test_a_model_with_rotary_buffers_is_attached_not_rebuilt_and_nothing_claims_otherwise(transformers, tmp_path):
    """'the checkpoint does not cover the whole model' appeared for Llama with nothing missing."""
    _tiny_llama(transformers, tmp_path / "llama")
    (tmp_path / "spec.py").write_text(
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        f"def make():\n    return LlamaForCausalLM(LlamaConfig.from_pretrained({str(tmp_path / 'llama')!r}))\n")
    s = paramedit.open_session(f"{tmp_path / 'spec.py'}:make", tmp_path / "llama")
    assert s.report.assigned and s.report.clean
    assert not any("does not cover" in n or "own initial values" in n for n in s.report.notes)
    inv_freq = s.model.model.rotary_emb.inv_freq
    assert not inv_freq.is_meta and torch.all(inv_freq > 0)  # computed for real, not left on meta
    assert s.run_backward().ok


def test_a_lightning_style_prefix_is_reported_as_what_happened(tmp_path):
    torch.manual_seed(0)
    inner = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    torch.save({"state_dict": {f"model.{k}": v for k, v in inner.state_dict().items()}, "epoch": 1},
               tmp_path / "last.ckpt")
    (tmp_path / "mlp.py").write_text("from torch import nn\n\ndef mlp():\n    return nn.Sequential(nn.Linear(3, 4), "
                                     "nn.ReLU(), nn.Linear(4, 2))\n")
    s = paramedit.open_session(f"{tmp_path / 'mlp.py'}:mlp", tmp_path / "last.ckpt")
    assert s.report.clean and s.report.assigned
    assert any("stripped prefix 'model.'" in n for n in s.report.notes)
    assert not any("does not cover" in n for n in s.report.notes)


def test_a_hugging_face_folder_opened_alone_says_how_to_open_it_with_its_architecture(transformers, tmp_path, capsys):
    _tiny_llama(transformers, tmp_path / "llama")
    code, out, _ = run(["inspect", tmp_path / "llama"], capsys)  # issue 11: a folder is a model by itself
    assert code == 0 and "built LlamaForCausalLM from" in out and "tensors loaded." in out
    assert "not the checkpoint" not in out
    code, out, _ = run(["inspect", tmp_path / "llama", "--tensors-only"], capsys)
    assert code == 0
    hint = next(line for line in out.splitlines() if "names the architecture LlamaForCausalLM" in line)
    command = shlex.split(hint.split("with its class as the spec: ", 1)[1])
    assert command[0] == "paramedit"
    spec, kwargs, folder = command[1], command[3], command[4]
    code, out, err = run(["inspect", folder, "--model", spec, "--model-kwargs", kwargs], capsys)
    assert code == 0, err
    assert "tensors loaded." in out and "not the checkpoint" not in out


def test_from_pretrained_without_arguments_suggests_model_kwargs(transformers, tmp_path, capsys):
    _tiny_llama(transformers, tmp_path / "llama")
    code, _, err = run(["inspect", tmp_path / "llama", "--model", "transformers:LlamaForCausalLM.from_pretrained"],
                       capsys)
    assert code == 2
    assert '--model-kwargs \'{"pretrained_model_name_or_path": ' in err


def test_did_you_mean_lists_close_names_only(tmp_path):
    torch.manual_seed(0)
    torch.save(zoo_models.resnet18().state_dict(), tmp_path / "r18.pth")
    s = paramedit.open_session(None, tmp_path / "r18.pth")
    with pytest.raises(EditError) as info:
        s.resolve("fc.weigth")
    assert info.value.message.endswith("did you mean fc.weight?")
    with pytest.raises(EditError) as info:
        s.resolve("model.layer1.0.conv1.weight")
    assert "did you mean layer1.0.conv1.weight?" in info.value.message
    with pytest.raises(EditError) as info:
        s.resolve("weight")  # used to offer every name ending in 'weight'
    offered = info.value.message.split("did you mean ", 1)[-1].rstrip("?").split(", ")
    assert len(offered) <= 5 and all(len(n) <= 12 for n in offered)  # short names like fc.weight, not layer4...
    with pytest.raises(ModelSpecError) as spec_info:
        paramedit.open_session("torch.nn:Lineer")
    suggested = spec_info.value.message.split("did you mean ", 1)[1]
    assert "Linear" in suggested and len(suggested.split(", ")) <= 5


@pytest.mark.parametrize(("name", "content", "words"), [
    ("model.onnx", b"\x08\x07\x12\x07pytorch", "ONNX model"),
    ("model.gguf", b"GGUF\x03\x00\x00\x00" + b"\x00" * 16, "GGUF file"),
])
def test_other_model_formats_are_named(tmp_path, name, content, words):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{words}.*not a PyTorch checkpoint"):
        paramedit.open_session(None, tmp_path / name)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_is_called_torchscript_not_a_pickle(tmp_path):
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), tmp_path / "vad.pt")
    with pytest.raises(UntrustedCheckpointError) as info:
        paramedit.open_session(None, tmp_path / "vad.pt")
    assert "TorchScript archive" in info.value.message and "pickle" not in info.value.message.split("It ")[0]


def test_inspect_prints_each_note_once(transformers, tmp_path, capsys):
    _tiny_llama(transformers, tmp_path / "llama")
    kwargs = json.dumps({"pretrained_model_name_or_path": str(tmp_path / "llama")})
    code, out, _ = run(["inspect", tmp_path / "llama", "--model", "transformers:LlamaForCausalLM.from_pretrained",
                        "--model-kwargs", kwargs], capsys)
    assert code == 0
    notes = [line for line in out.splitlines() if line.strip().startswith("note:")]
    assert len(notes) == len(set(notes)) and any("without copying" in n for n in notes)


def test_a_pickled_model_is_called_a_pickled_model(tmp_path):
    torch.save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "whole.pt")
    with pytest.raises(UntrustedCheckpointError) as info:
        paramedit.open_session(None, tmp_path / "whole.pt")
    assert "holds a pickled model (torch.save(model)), not a state dict" in info.value.message


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_the_torchscript_refusal_is_short_and_points_to_o(tmp_path, capsys):
    torch.jit.save(torch.jit.script(zoo_models.resnet18()), tmp_path / "r18.pt")
    code, _, err = run(["inspect", tmp_path / "r18.pt"], capsys)
    assert code == 2 and len(err) < 1200
    assert "never rewritten" in err and "-o" in err and "___torch_mangle" not in err
