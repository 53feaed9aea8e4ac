"""Issue 9: never write what was not loaded. A save keeps the checkpoint's own layout, and a
model that does not fit its checkpoint, or a file that cannot be rewritten whole, is refused."""

from __future__ import annotations

import json
from collections import OrderedDict
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


def write_log(path: Path, edits: list[dict]) -> Path:
    path.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": edits}))
    return path


def trained_resnet18(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(1)
    state = zoo_models.resnet18().state_dict()
    path = tmp_path / "r18.pth"
    torch.save(state, path)
    return path, {k: v.clone() for k, v in state.items()}


def test_apply_with_a_model_that_does_not_fit_is_refused_and_writes_nothing(tmp_path, capsys):
    """Reproduction 1: a mobilenet spec over a resnet18 file once wrote a random mobilenet over it."""
    ckpt, _ = trained_resnet18(tmp_path)
    before = ckpt.read_bytes()
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "classifier.0.bias", "value": 0.0}])
    code, out, err = run(["apply", ckpt, log, "--in-place", "--model", f"{ZOO}:mobilenet_v3_small"], capsys)
    assert code == 2 and out == ""
    assert "does not fit" in err and "nothing was written" in err and "--allow-mismatch" in err
    assert "classifier.0.bias" in err  # the lost edit is named
    assert ckpt.read_bytes() == before


def test_allow_mismatch_writes_back_the_files_own_tensors_not_the_models(tmp_path, capsys):
    ckpt, original = trained_resnet18(tmp_path)
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "fc.bias", "value": 0.5}])
    # resnet34 holds every resnet18 tensor (same names and shapes) and 96 more.
    code, _, err = run(["apply", ckpt, log, "-o", tmp_path / "out.pth", "--model", f"{ZOO}:resnet34",
                        "--allow-mismatch"], capsys)
    assert code == 0, err
    assert "96 tensor(s) the model has and the file lacks are not written" in err
    saved = torch.load(tmp_path / "out.pth", weights_only=True)
    assert list(saved) == list(original)  # same names, same order, nothing added
    for name, value in original.items():
        if name == "fc.bias":
            assert torch.all(saved[name] == 0.5)
        else:
            assert torch.equal(saved[name], value), name


def test_add_missing_writes_the_models_extra_tensors_under_the_files_naming(tmp_path, capsys):
    torch.manual_seed(0)
    state = zoo_models.resnet18().state_dict()
    lightning_style = {f"model.{k}": v for k, v in state.items() if not k.startswith("fc.")}
    torch.save(lightning_style, tmp_path / "no_head.pt")
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "fc.bias", "value": 1.0}])
    code, _, err = run(["apply", tmp_path / "no_head.pt", log, "-o", tmp_path / "out.pt", "--model",
                        f"{ZOO}:resnet18", "--allow-mismatch", "--add-missing"], capsys)
    assert code == 0, err
    saved = torch.load(tmp_path / "out.pt", weights_only=True)
    assert set(saved) == set(lightning_style) | {"model.fc.weight", "model.fc.bias"}
    assert torch.all(saved["model.fc.bias"] == 1.0)


def test_a_factory_that_fits_only_partly_never_puts_random_values_into_trained_tensors(tmp_path):
    """Reproduction 1: a ViT factory that fit a folder only partly put random init into 32 trained tensors."""
    torch.manual_seed(3)
    trained = zoo_models.vit_b_16().state_dict()
    trained = {k: v for k, v in trained.items() if k != "heads.head.weight"}  # a head-less export
    trained["encoder.extra_norm.weight"] = torch.randn(16)  # a key this model does not have
    torch.save(trained, tmp_path / "vit.pt")
    s = paramedit.open_session(f"{ZOO}:vit_b_16", tmp_path / "vit.pt")
    assert s.report.missing == ["heads.head.weight"]
    s.stage("conv_proj.bias", "[0]", 7.0)
    s.commit()
    plan = s.plan_save(tmp_path / "out.pt")
    assert not plan.fits and plan.lost_edits == []
    s.save(tmp_path / "out.pt")
    saved = torch.load(tmp_path / "out.pt", weights_only=True)
    assert list(saved) == list(trained)
    for name, value in trained.items():
        expected = value.clone()
        if name == "conv_proj.bias":
            expected[0] = 7.0
        assert torch.equal(saved[name], expected), name


def test_bert_mlm_folder_through_automodel_keeps_head_prefix_and_adds_no_pooler(tmp_path, capsys):
    """Reproduction 1: AutoModel.from_pretrained on a BertForMaskedLM folder dropped the MLM head,
    added a random pooler and removed the 'bert.' prefix."""
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(num_hidden_layers=1, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                     vocab_size=40, max_position_embeddings=32)
    torch.manual_seed(0)
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path / "mlm")
    from safetensors.torch import load_file

    original = load_file(tmp_path / "mlm" / "model.safetensors")
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "embeddings.word_embeddings.weight",
                                           "index": "[3, :]", "value": 0.0}])
    spec = ["--model", "transformers:AutoModel.from_pretrained", "--model-kwargs",
            json.dumps({"pretrained_model_name_or_path": str(tmp_path / "mlm")})]
    code, _, err = run(["apply", tmp_path / "mlm", log, "-o", tmp_path / "out.safetensors", *spec], capsys)
    assert code == 2 and "pooler.dense.weight" in err and "cls.predictions" in err
    code, _, err = run(["apply", tmp_path / "mlm", log, "-o", tmp_path / "out.safetensors", *spec,
                        "--allow-mismatch"], capsys)
    assert code == 0, err
    saved = load_file(tmp_path / "out.safetensors")
    assert set(saved) == set(original)
    assert not any(k.startswith("pooler") or k.startswith("bert.pooler") for k in saved)
    assert torch.all(saved["bert.embeddings.word_embeddings.weight"][3] == 0)
    for name in original:
        if name != "bert.embeddings.word_embeddings.weight":
            assert torch.equal(saved[name], original[name]), name


def test_in_place_keeps_the_module_prefix_containers_and_other_tensor_dicts(tmp_path, capsys):
    torch.manual_seed(0)
    state = OrderedDict((f"module.{k}", v) for k, v in nn.Linear(3, 2).state_dict().items())
    state._metadata = {"": {"version": 1}, "module": {"version": 1}}  # type: ignore[attr-defined]
    ema = {k: v + 1 for k, v in state.items()}
    torch.save({"model": state, "ema": ema}, tmp_path / "run.pt")
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "bias", "value": 9.0}])
    code, _, err = run(["apply", tmp_path / "run.pt", log, "--in-place"], capsys)
    assert code == 0, err
    saved = torch.load(tmp_path / "run.pt", weights_only=True)
    assert set(saved) == {"model", "ema"}
    assert list(saved["model"]) == ["module.weight", "module.bias"]
    assert torch.all(saved["model"]["module.bias"] == 9.0)
    assert torch.equal(saved["model"]["module.weight"], state["module.weight"])
    assert all(torch.equal(saved["ema"][k], ema[k]) for k in ema)
    assert saved["model"]._metadata == state._metadata


def test_in_place_refuses_a_lightning_checkpoint_and_o_says_what_it_leaves_out(tmp_path, capsys):
    """Reproduction 9: apply -o from a Lightning file wrote what load_from_checkpoint rejects, without a word."""
    torch.manual_seed(0)
    ckpt = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0",
            "state_dict": {f"model.{k}": v for k, v in nn.Linear(3, 2).state_dict().items()},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}],
            "hyper_parameters": {"width": 3}}
    torch.save(ckpt, tmp_path / "last.ckpt")
    before = (tmp_path / "last.ckpt").read_bytes()
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "model.bias", "value": 0.0}])
    code, _, err = run(["apply", tmp_path / "last.ckpt", log, "--in-place"], capsys)
    assert code == 2 and "Lightning" in err and "optimizer_states" in err and "-o OUT" in err
    assert (tmp_path / "last.ckpt").read_bytes() == before
    code, _, err = run(["apply", tmp_path / "last.ckpt", log, "-o", tmp_path / "out.ckpt"], capsys)
    assert code == 0
    assert "warning" in err and "load_from_checkpoint" in err and "epoch" in err
    assert set(torch.load(tmp_path / "out.ckpt", weights_only=True)) == {"model.weight", "model.bias"}


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
@pytest.mark.parametrize("kind", ["torchscript", "pickled-module"])
def test_in_place_trust_never_destroys_torchscript_or_whole_model_files(tmp_path, capsys, kind):
    """Reproduction 2: --in-place --trust turned a TorchScript archive or torch.save(model) into a bare state dict."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2))
    path = tmp_path / "model.pt"
    if kind == "torchscript":
        torch.jit.save(torch.jit.script(net), path)
    else:
        torch.save(net, path)
    before = path.read_bytes()
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "0.bias", "value": 0.0}])
    code, out, err = run(["apply", path, log, "--in-place", "--trust"], capsys)
    assert code == 2 and out == ""
    assert ("TorchScript archive" if kind == "torchscript" else "pickled model object") in err
    assert "-o OUT" in err
    assert path.read_bytes() == before
    if kind == "torchscript":
        assert isinstance(torch.jit.load(str(path)), torch.jit.ScriptModule)
    # -o writes the edited state dict and says what it leaves out.
    code, _, err = run(["apply", path, log, "-o", tmp_path / "weights.pt", "--trust"], capsys)
    assert code == 0 and "not carried over" in err
    assert torch.all(torch.load(tmp_path / "weights.pt", weights_only=True)["0.bias"] == 0)


def test_a_file_saved_in_bfloat16_is_written_back_in_bfloat16_through_a_float32_model(tmp_path, capsys):
    torch.manual_seed(0)
    state = {k: v.to(torch.bfloat16) for k, v in nn.Linear(3, 2).state_dict().items()}
    torch.save(state, tmp_path / "half.pt")
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "bias", "value": 0.25}])
    code, _, err = run(["apply", tmp_path / "half.pt", log, "--in-place", "--model", "torch.nn:Linear",
                        "--model-kwargs", '{"in_features": 3, "out_features": 2}'], capsys)
    assert code == 0, err
    saved = torch.load(tmp_path / "half.pt", weights_only=True)
    assert {t.dtype for t in saved.values()} == {torch.bfloat16}
    assert torch.all(saved["bias"] == 0.25) and torch.equal(saved["weight"], state["weight"])


def test_in_place_on_a_sharded_hugging_face_folder_rewrites_only_the_changed_shard(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64, n_positions=16)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2", max_shard_size="8KB")
    shards = sorted((tmp_path / "gpt2").glob("model-*.safetensors"))
    assert len(shards) > 2
    before = {p.name: p.read_bytes() for p in shards}
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "transformer.wte.weight", "index": "[3, :]",
                                           "value": 0.0}])
    code, _, err = run(["apply", tmp_path / "gpt2", log, "--in-place"], capsys)
    assert code == 0, err
    changed = [p.name for p in shards if p.read_bytes() != before[p.name]]
    assert len(changed) == 1
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "gpt2")
    assert torch.all(reloaded.transformer.wte.weight[3] == 0)
    assert reloaded.lm_head.weight is reloaded.transformer.wte.weight


def test_an_edit_the_files_dtype_cannot_hold_is_refused_not_written_as_inf(tmp_path, capsys):
    """Found by review: a float32 model over a float16 file wrote 1e5 as inf, exit 0."""
    torch.manual_seed(0)
    torch.save({k: v.half() for k, v in nn.Linear(3, 2).state_dict().items()}, tmp_path / "h.pt")
    before = (tmp_path / "h.pt").read_bytes()
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "weight", "index": "[0, 0]", "value": 1e5}])
    code, _, err = run(["apply", tmp_path / "h.pt", log, "--in-place", "--model", "torch.nn:Linear",
                        "--model-kwargs", '{"in_features": 3, "out_features": 2}'], capsys)
    assert code == 2 and "weight[0, 0] = 100000 does not fit the file's float16" in err
    assert (tmp_path / "h.pt").read_bytes() == before


def test_edits_to_tensors_the_file_lacks_are_never_dropped_silently(tmp_path, capsys):
    """Found by review: Session.save dropped them without a word and marked the session saved."""
    ckpt, _ = trained_resnet18(tmp_path)
    s = paramedit.open_session(f"{ZOO}:resnet34", ckpt)
    s.stage("layer1.2.conv1.weight", "[0]", 0.0)
    s.commit()
    with pytest.raises(paramedit.SaveError, match=r"edits to layer1\.2\.conv1\.weight would not be saved"):
        s.save(tmp_path / "x.pth")
    assert not (tmp_path / "x.pth").exists() and s.unsaved
    s.save(tmp_path / "x.pth", allow_lost_edits=True)
    assert not s.unsaved
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "layer1.2.conv1.weight", "index": "[0]",
                                           "value": 0.0}])
    code, _, err = run(["apply", ckpt, log, "-o", tmp_path / "y.pth", "--model", f"{ZOO}:resnet34",
                        "--allow-mismatch"], capsys)
    assert code == 2 and "--add-missing" in err and not (tmp_path / "y.pth").exists()


def test_a_safetensors_files_metadata_and_a_sharded_index_metadata_are_kept(tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2, 2)}, str(tmp_path / "m.safetensors"), metadata={"trained_by": "me", "step": "1000"})
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "w", "index": "[0, 0]", "value": 5.0}])
    assert run(["apply", tmp_path / "m.safetensors", log, "--in-place"], capsys)[0] == 0
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as f:
        assert f.metadata()["trained_by"] == "me" and f.metadata()["step"] == "1000"
        assert float(f.get_tensor("w")[0, 0]) == 5.0
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64,
                                                         n_positions=16)).save_pretrained(tmp_path / "g",
                                                                                          max_shard_size="8KB")
    index = tmp_path / "g" / "model.safetensors.index.json"
    meta_before = json.loads(index.read_text())["metadata"]
    log = write_log(tmp_path / "e2.json", [{"op": "set", "target": "transformer.wte.weight", "index": "[1, :]",
                                            "value": 0.0}])
    assert run(["apply", tmp_path / "g", log, "--in-place"], capsys)[0] == 0
    meta_after = json.loads(index.read_text())["metadata"]
    assert {k: v for k, v in meta_before.items()} == {k: v for k, v in meta_after.items() if k in meta_before}


@pytest.mark.parametrize("shard", [False, True])
def test_o_newdir_writes_a_complete_folder_that_from_pretrained_loads(tmp_path, capsys, shard):
    """Found by review (and issue 11): -o EMPTY_DIR wrote only weights, so from_pretrained failed."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64, n_positions=16)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "src", **({"max_shard_size": "8KB"} if shard
                                                                               else {}))
    (tmp_path / "src" / "tokenizer_config.json").write_text("{}")
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "transformer.wte.weight", "index": "[5, :]",
                                           "value": 0.0}])
    code, _, err = run(["apply", tmp_path / "src", log, "-o", tmp_path / "new"], capsys)
    assert code == 0, err
    names = {p.name for p in (tmp_path / "new").iterdir()}
    assert {"config.json", "generation_config.json", "tokenizer_config.json"} <= names
    assert not any(p.name.endswith(".paramedit-tmp") for p in tmp_path.iterdir())
    model = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "new")
    assert torch.all(model.transformer.wte.weight[5] == 0)
    original = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "src")
    assert torch.equal(model.transformer.h[1].mlp.c_fc.weight, original.transformer.h[1].mlp.c_fc.weight)


def test_a_folder_holding_other_things_is_refused(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64, n_positions=16)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "src")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "transformer.wte.weight", "index": "[5, :]",
                                           "value": 0.0}])
    code, _, err = run(["apply", tmp_path / "src", log, "-o", tmp_path / "busy"], capsys)
    assert code == 2 and "holds other files (notes.txt)" in err
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]


def test_o_newdir_with_a_dot_in_its_name_is_a_folder(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64, n_positions=16)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "tiny-v1.5")
    log = write_log(tmp_path / "e.json", [{"op": "set", "target": "transformer.wte.weight", "index": "[5, :]",
                                           "value": 0.0}])
    code, _, err = run(["apply", tmp_path / "tiny-v1.5", log, "-o", tmp_path / "tiny-v1.5-edited"], capsys)
    assert code == 0, err
    assert (tmp_path / "tiny-v1.5-edited").is_dir() and (tmp_path / "tiny-v1.5-edited" / "config.json").is_file()
    code, _, err = run(["apply", tmp_path / "tiny-v1.5", log, "-o", tmp_path / "one.safetensors"], capsys)
    assert code == 0 and (tmp_path / "one.safetensors").is_file()  # a checkpoint file's name is still a file
