"""Issue 9: never call a failed check a pass. Zero gradients are their own status, a check on
weights that were not loaded is refused, model output never corrupts --json, model code runs once,
and inputs reach forward by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import paramedit
from paramedit.cli import main
from tests import zoo_models

ZOO = Path(zoo_models.__file__).resolve()


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def resnet_with_zeroed_head(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = zoo_models.resnet18()
    with torch.no_grad():
        net.fc.weight.zero_()  # the typical ablation: every gradient before the head is now exactly 0
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    return tmp_path / "r18.pth"


def test_zero_gradients_are_not_ok_in_text_json_or_strict_exit(tmp_path, capsys):
    """Reproduction 3: after zeroing resnet18's fc.weight, 60 of 62 gradients are exactly 0 and
    check said "all 62 trainable parameters received finite gradients"."""
    ckpt = resnet_with_zeroed_head(tmp_path)
    args = ["check", "--model", f"{ZOO}:resnet18", "--checkpoint", ckpt]
    code, out, err = run(args, capsys)
    assert code == 0  # connected: a warning, not a failure, unless --strict
    assert "ZERO" in out and "exactly zero" in out and "60 of them" in out
    assert "received finite, non-zero gradients" not in out
    assert "--strict" in err
    code, out, _ = run([*args, "--json"], capsys)
    data = json.loads(out)
    assert len(data["zero_grad"]) == 60 and "fc.weight" not in data["zero_grad"] and "fc.bias" not in data["zero_grad"]
    assert data["missing_grad"] == []
    code, _, _ = run([*args, "--strict"], capsys)
    assert code == 1


def test_an_untouched_vit_with_its_zero_initialised_head_is_flagged(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(zoo_models.vit_b_16().state_dict(), tmp_path / "vit.pt")
    code, out, _ = run(["check", "--model", f"{ZOO}:vit_b_16", "--checkpoint", tmp_path / "vit.pt", "--input",
                        "randn(2, 3, 16, 16)", "--json", "--strict"], capsys)
    assert code == 1
    zero = json.loads(out)["zero_grad"]
    assert "heads.head.bias" not in zero and "encoder.layers.encoder_layer_0.mlp.0.weight" in zero


def test_check_refuses_a_checkpoint_that_did_not_load(tmp_path, capsys):
    """Reproduction 4: with "0 tensors loaded" check ran on random weights and exited 0."""
    torch.manual_seed(0)
    torch.save(zoo_models.mobilenet_v3_small().state_dict(), tmp_path / "mobile.pt")
    code, out, err = run(["check", "--model", f"{ZOO}:resnet18", "--checkpoint", tmp_path / "mobile.pt"], capsys)
    assert code == 2 and out == ""
    assert "122 model tensor(s) were not loaded" in err and "random weights" in err and "--allow-missing" in err
    code, out, _ = run(["check", "--model", f"{ZOO}:resnet18", "--checkpoint", tmp_path / "mobile.pt",
                        "--allow-missing"], capsys)
    assert code == 0 and "loss" in out


def test_check_refuses_a_partial_fit(tmp_path, capsys):
    """Reproduction 4: a resnet34 spec on a resnet18 file left 96 tensors random and still passed."""
    torch.manual_seed(0)
    torch.save(zoo_models.resnet18().state_dict(), tmp_path / "r18.pth")
    code, _, err = run(["check", "--model", f"{ZOO}:resnet34", "--checkpoint", tmp_path / "r18.pth"], capsys)
    assert code == 2
    assert "96 model tensor(s) were not loaded" in err and "layer1.2.conv1.weight" in err


def _cli(args: list, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "paramedit", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_json_stays_json_when_the_model_prints(tmp_path):
    """Reproduction 6: LPIPS prints "Setting up..." into stdout, so --json was not JSON."""
    torch.manual_seed(0)
    torch.save(zoo_models.Chatty().state_dict(), tmp_path / "chatty.pt")
    spec = f"{ZOO}:Chatty"
    result = _cli(["check", "--model", spec, "--checkpoint", tmp_path / "chatty.pt", "--input", "randn(1, 4, 3, 3)",
                   "--json"])
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)  # one JSON document, nothing else
    assert "Setting up [chatty]" in result.stderr and "chatty forward" in result.stderr
    result = _cli(["inspect", tmp_path / "chatty.pt", "--model", spec, "--json"])
    assert result.returncode == 0 and json.loads(result.stdout)["tensors"]


@pytest.mark.parametrize("fits", [True, False])
def test_the_model_constructor_runs_once_as_far_as_the_user_can_see(tmp_path, fits):
    """Reproduction 6: constructors ran twice whenever the meta build did not fit."""
    torch.manual_seed(0)
    torch.save(zoo_models.CountsItself().state_dict(), tmp_path / "c.pt")
    count = tmp_path / "count.txt"
    kwargs = json.dumps({"extra": not fits})
    result = _cli(["inspect", tmp_path / "c.pt", "--model", f"{ZOO}:CountsItself", "--model-kwargs", kwargs],
                  env={"PARAMEDIT_TEST_COUNT_FILE": str(count)})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("constructing CountsItself") == 1
    runs = count.read_text().count("built")
    # A model the checkpoint covers is constructed once; one it does not must be built for real to
    # get its own initial values, and only that build's output is shown.
    assert runs == (1 if fits else 2)
    if not fits:
        assert "built the model with its own initial values" in result.stdout
        assert "extra.weight" in result.stdout


def test_a_constructor_that_loads_its_own_weights_gives_no_meta_copy_warnings(tmp_path):
    """Reproduction 6: facenet flooded 13 warnings about copying into meta parameters."""
    torch.manual_seed(0)
    own = zoo_models.LoadsItsOwnWeights().state_dict()
    torch.save(own, tmp_path / "own.pt")
    torch.save({k: v + 1 for k, v in own.items()}, tmp_path / "ckpt.pt")
    result = _cli(["inspect", tmp_path / "ckpt.pt", "--model", f"{ZOO}:LoadsItsOwnWeights", "--model-kwargs",
                   json.dumps({"weights": str(tmp_path / "own.pt")})])
    assert result.returncode == 0, result.stderr
    assert "meta" not in result.stderr.lower()
    s = paramedit.open_session(f"{ZOO}:LoadsItsOwnWeights", tmp_path / "ckpt.pt",
                               model_kwargs={"weights": str(tmp_path / "own.pt")})
    assert torch.equal(s.tensor("a.weight").detach(), own["a.weight"] + 1)  # the checkpoint's, not the constructor's


def test_keyword_inputs_reach_forward_by_name(capsys):
    """Reproduction 8: --input was positional only."""
    class NeedsMask(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)

        def forward(self, ids, scale=None, attention_mask=None):
            assert attention_mask is not None and scale is None
            return self.emb(ids) * attention_mask.unsqueeze(-1)

    s = paramedit.open_session(NeedsMask())
    report = s.run_backward(input_exprs=["randint(10, (1, 5))", "attention_mask=ones(1, 5)"])
    assert report.ok
    with pytest.raises(paramedit.BackwardCheckError, match="positional but comes after a keyword"):
        s.run_backward(input_exprs=["attention_mask=ones(1, 5)", "randint(10, (1, 5))"])


def test_a_forward_error_says_what_forward_takes(capsys):
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, input_ids, attention_mask):
            return self.lin(input_ids) * attention_mask

    s = paramedit.open_session(TwoInputs())
    with pytest.raises(paramedit.BackwardCheckError, match=r"forward takes input_ids, attention_mask.*name=EXPR"):
        s.run_backward(input_exprs=["randn(2, 3)"])


def _hf_default_check(model: nn.Module) -> None:
    s = paramedit.open_session(model)
    assert s.needs_input is False or s.example_inputs is None
    report = s.run_backward()  # no input given: the config's defaults
    assert report.ok, report.verdict()


def test_hugging_face_models_get_inputs_from_their_config():
    """Reproduction 8: T5 needed a filler attention mask, Whisper likewise; language models got randn(2, 5)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50,
                                                                 n_positions=32))
    _hf_default_check(gpt2)
    t5 = transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, decoder_start_token_id=0))
    _hf_default_check(t5)
    whisper = transformers.WhisperForConditionalGeneration(transformers.WhisperConfig(
        vocab_size=60, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=8,
        max_source_positions=16, max_target_positions=16, pad_token_id=0, decoder_start_token_id=1))
    _hf_default_check(whisper)
    vit = transformers.ViTForImageClassification(transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=8,
        patch_size=4, num_labels=3))
    _hf_default_check(vit)


def test_a_model_without_an_example_gets_a_guess_in_the_error_not_a_random_shape(tmp_path, capsys):
    (tmp_path / "plain.py").write_text("from torch import nn\n\ndef conv():\n    return nn.Sequential(nn.Conv2d(3, 4, 3))\n")
    code, _out, err = run(["check", "--model", f"{tmp_path / 'plain.py'}:conv"], capsys)
    assert code == 2 and "--input 'randn(1, 3, 32, 32)'" in err and "guessed from its first layer" in err


def test_a_check_on_a_nan_model_names_the_values_that_cause_it(tmp_path, capsys):
    """Issue 10: the check on the NaN model marked every parameter as failed and did not point at the cause."""
    torch.manual_seed(0)
    net = zoo_models.resnet18()
    with torch.no_grad():
        net.layer2[0].conv1.weight[3, 1, 0, 2] = float("nan")
    torch.save(net.state_dict(), tmp_path / "nan.pth")
    code, out, _ = run(["check", "--model", f"{ZOO}:resnet18", "--checkpoint", tmp_path / "nan.pth", "--json"],
                       capsys)
    assert code == 1
    data = json.loads(out)
    assert data["cause"] == ["layer2.0.conv1.weight[3, 1, 0, 2] holds NaN"]
    code, out, _ = run(["check", "--model", f"{ZOO}:resnet18", "--checkpoint", tmp_path / "nan.pth"], capsys)
    assert "because the model's own values are not finite: layer2.0.conv1.weight[3, 1, 0, 2] holds NaN" in out


def test_json_stays_json_when_model_code_writes_to_the_file_descriptor(tmp_path):
    """A C extension or a subprocess writes to fd 1, bypassing Python's sys.stdout."""
    (tmp_path / "noisy.py").write_text(
        "import os, sys\nimport torch\nfrom torch import nn\n"
        "os.write(1, b'loading native kernels\\n')\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        sys.__stdout__.write('built\\n'); sys.__stdout__.flush()\n"
        "        self.lin = nn.Linear(3, 2)\n"
        "    def forward(self, x):\n"
        "        os.write(1, b'forward\\n')\n"
        "        return self.lin(x)\n")
    result = _cli(["check", "--model", f"{tmp_path / 'noisy.py'}:Net", "--input", "randn(2, 3)", "--json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["missing_grad"] == []
    assert "loading native kernels" in result.stderr and "built" in result.stderr and "forward" in result.stderr


def test_a_check_on_example_inputs_is_repeatable(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(zoo_models.resnet18().state_dict(), tmp_path / "r18.pth")
    losses = set()
    for _ in range(3):
        _code, out, _ = run(["check", "--model", f"{ZOO}:resnet18", "--checkpoint", tmp_path / "r18.pth", "--json"],
                           capsys)
        losses.add(json.loads(out)["loss"])
    assert len(losses) == 1


def test_the_api_check_says_when_it_ran_on_weights_not_from_the_checkpoint(tmp_path):
    """Found by review: the window's and the API's check passed on random weights."""
    torch.manual_seed(0)
    torch.save(zoo_models.resnet18().state_dict(), tmp_path / "r18.pth")
    s = paramedit.open_session(f"{ZOO}:resnet34", tmp_path / "r18.pth")
    report = s.run_backward()
    assert len(report.not_loaded) == 96 and not report.strict_ok
    assert "96 model tensor(s) did not come from the checkpoint" in report.verdict()


def test_keys_transformers_renames_on_load_are_matched_not_called_missing(tmp_path, capsys):
    """Found by review: a ViT folder through its from_pretrained reported 32 tensors 'not loaded'."""
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, image_size=8, patch_size=4, num_labels=3)
    torch.manual_seed(0)
    transformers.ViTForImageClassification(config).save_pretrained(tmp_path / "vit")
    spec = ["--model", "transformers:ViTForImageClassification.from_pretrained", "--model-kwargs",
            json.dumps({"pretrained_model_name_or_path": str(tmp_path / "vit")})]
    code, out, err = run(["check", *spec, "--checkpoint", tmp_path / "vit"], capsys)
    assert code == 0, err
    code, out, _ = run(["inspect", tmp_path / "vit", *spec], capsys)
    assert "not the checkpoint" not in out and "renamed key(s) the way transformers loads" in out
    log = tmp_path / "e.json"
    log.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": [
        {"op": "set", "target": "vit.layers.0.attention.q_proj.weight", "index": "[0, :]", "value": 0.0}]}))
    code, _, err = run(["apply", tmp_path / "vit", log, "--in-place", *spec], capsys)
    assert code == 0, err
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "vit" / "model.safetensors")
    assert torch.all(saved["vit.encoder.layer.0.attention.attention.query.weight"][0] == 0)
    assert "vit.layers.0.attention.q_proj.weight" not in saved


def test_only_checks_the_matching_parameters_and_restores_the_others(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(zoo_models.resnet18().state_dict(), tmp_path / "r18.pth")
    code, out, err = run(["check", "--model", f"{ZOO}:resnet18", "--checkpoint", tmp_path / "r18.pth",
                          "--only", "layer4.*", "--only", "fc.*", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    names = [p["name"] for p in data["params"]]
    assert names and all(n.startswith(("layer4.", "fc.")) for n in names)
    assert data["only"] == ["layer4.*", "fc.*"]
    s = paramedit.open_session(f"{ZOO}:resnet18", tmp_path / "r18.pth")
    conv1 = s.tensor("conv1.weight")
    report = s.run_backward(only=["fc.*"])
    assert [p.name for p in report.params] == ["fc.weight", "fc.bias"] and report.ok
    assert conv1.requires_grad and conv1.grad is None  # frozen for the check only: no gradient memory
    assert "checked 2 of 62 parameters" in report.verdict()
    code, _, err = run(["check", "--model", f"{ZOO}:resnet18", "--only", "decoder.*"], capsys)
    assert code == 2 and "matches no tensor" in err


def test_a_check_that_cannot_fit_is_refused_before_it_starts(tmp_path, monkeypatch):
    import paramedit.core.model.check_memory as check_memory

    torch.manual_seed(0)
    s = paramedit.open_session(zoo_models.resnet18())
    monkeypatch.setattr(check_memory, "free_bytes", lambda device: 1000)  # a machine with 1 kB free
    before = [p.grad for p in s.model.parameters()]
    with pytest.raises(paramedit.BackwardCheckError, match=r"needs about .* so the check was not started.*--only 'layer4\.1\.\*'"):
        s.run_backward(inputs=(torch.randn(1, 3, 32, 32),))
    assert [p.grad for p in s.model.parameters()] == before
    report = s.run_backward(inputs=(torch.randn(1, 3, 32, 32),), check_memory=False)
    assert report.ok


def test_bad_inputs_are_refused_before_the_model_is_loaded(tmp_path, capsys):
    count = tmp_path / "count.txt"
    import os

    os.environ["PARAMEDIT_TEST_COUNT_FILE"] = str(count)
    try:
        code, _, err = run(["check", "--model", f"{ZOO}:CountsItself", "--input", "randn(2, 3"], capsys)
    finally:
        del os.environ["PARAMEDIT_TEST_COUNT_FILE"]
    assert code == 2 and "--input 'randn(2, 3'" in err
    assert not count.exists()  # the model was never built


def test_a_causal_language_model_is_checked_on_its_next_token_loss(tmp_path, capsys):
    """Issue 12: a real loss when it can tell; the sum of the outputs otherwise."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50,
                                                                 n_positions=32))
    s = paramedit.open_session(model)
    ids = torch.randint(50, (1, 12))
    report = s.run_backward(inputs=paramedit.core.model.inputs.ForwardInputs((), {"input_ids": ids}))
    assert report.objective == "next-token cross-entropy of the input" and report.ok
    model.eval()  # as the check runs it (dropout off); the check restored the model's mode
    with torch.no_grad():
        expected = model(input_ids=ids, labels=ids).loss  # transformers' own shifted cross-entropy
    assert report.loss == pytest.approx(float(expected), rel=1e-5)
    classifier = nn.Sequential(nn.Linear(4, 3))
    s2 = paramedit.open_session(classifier)
    x = torch.randn(5, 4)
    r = s2.run_backward(inputs=(x,), loss="class:2")
    assert r.objective == "cross-entropy against class 2"
    assert r.loss == pytest.approx(float(nn.functional.cross_entropy(classifier(x), torch.full((5,), 2))), rel=1e-5)
    assert s2.run_backward(inputs=(x,)).objective == "sum of the outputs"
    with pytest.raises(paramedit.BackwardCheckError, match="class:7: the output has 3 classes"):
        s2.run_backward(inputs=(x,), loss="class:7")
