"""Issue 11: a Hugging Face folder is a model by itself, opened at the cost of mapping it.

Each folder is built with the architecture its config.json names, its parameters are the
folder's memory-mapped tensors (no anonymous copy), in the folder's dtype, and the backward
check runs on it with inputs from the config."""

from __future__ import annotations

import json
import os

import pytest
import torch

import paramedit

transformers = pytest.importorskip("transformers")


def tiny(name: str):
    t = transformers
    if name == "llama":
        return t.LlamaForCausalLM(t.LlamaConfig(num_hidden_layers=2, hidden_size=16, intermediate_size=32,
                                                num_attention_heads=2, num_key_value_heads=1, vocab_size=64,
                                                max_position_embeddings=32))
    if name == "gpt2":
        return t.GPT2LMHeadModel(t.GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64, n_positions=32))
    if name == "bert":
        return t.BertForMaskedLM(t.BertConfig(num_hidden_layers=1, hidden_size=16, intermediate_size=32,
                                              num_attention_heads=2, vocab_size=64, max_position_embeddings=32))
    if name == "t5":
        return t.T5ForConditionalGeneration(t.T5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                                       num_heads=2, decoder_start_token_id=0))
    if name == "vit":
        return t.ViTForImageClassification(t.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=32, image_size=8, patch_size=4,
                                                       num_labels=3))
    raise AssertionError(name)


def mapped(session, tensor: torch.Tensor) -> bool:
    return any(f.holds(tensor.detach()) for f in session.checkpoint.mapped_files)


@pytest.mark.parametrize("name", ["llama", "gpt2", "bert", "t5", "vit"])
def test_a_folder_opens_with_its_architecture_on_its_own_mapped_tensors(tmp_path, name):
    torch.manual_seed(0)
    model = tiny(name)
    model.save_pretrained(tmp_path / name)
    s = paramedit.open_session(None, tmp_path / name)
    assert type(s.model).__name__ == type(model).__name__
    assert s.report.assigned and not s.report.missing and not s.report.mismatched, s.report.summary()
    assert any(n.startswith("built " + type(model).__name__) for n in s.report.notes)
    params = dict(s.model.named_parameters())
    assert params and all(mapped(s, p) for p in params.values())  # no anonymous copy of any weight
    for model_name, value in model.state_dict().items():
        if model_name in params:
            assert torch.equal(s.model.state_dict()[model_name], value), model_name
    assert s.run_backward().ok  # inputs from the config


def test_a_bfloat16_folder_stays_bfloat16_and_mapped(tmp_path):
    torch.manual_seed(0)
    tiny("llama").to(torch.bfloat16).save_pretrained(tmp_path / "llama")
    s = paramedit.open_session(None, tmp_path / "llama")
    assert {p.dtype for p in s.model.parameters()} == {torch.bfloat16}
    assert not s.report.converted
    assert all(mapped(s, p) for p in s.model.parameters())
    assert not s.model.model.rotary_emb.inv_freq.is_meta


def test_tensors_only_and_architecture_false(tmp_path):
    tiny("gpt2").save_pretrained(tmp_path / "gpt2")
    s = paramedit.open_session(None, tmp_path / "gpt2", architecture=False)
    assert s.model is None and "transformer.wte.weight" in s.names()


def _write_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        config.pop(key)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_config_without_architectures_or_with_an_unknown_one_opens_as_tensors_with_the_reason(tmp_path):
    tiny("gpt2").save_pretrained(tmp_path / "a")
    _write_config(tmp_path / "a", architectures=None)
    s = paramedit.open_session(None, tmp_path / "a")
    assert s.model is None and any("names no architecture" in n for n in s.checkpoint.notes)
    _write_config(tmp_path / "a", architectures=["GPT9000ForEverything"])
    s = paramedit.open_session(None, tmp_path / "a")
    assert s.model is None and any("GPT9000ForEverything, which transformers" in n for n in s.checkpoint.notes)


REMOTE_CONFIG = """from transformers import PretrainedConfig


class TinyRemoteConfig(PretrainedConfig):
    model_type = "tiny_remote"

    def __init__(self, width=4, **kwargs):
        self.width = width
        super().__init__(**kwargs)
"""

REMOTE_MODEL = """import torch
from transformers import PreTrainedModel

from .configuration_tiny import TinyRemoteConfig


class TinyRemoteModel(PreTrainedModel):
    config_class = TinyRemoteConfig

    def __init__(self, config):
        super().__init__(config)
        self.lin = torch.nn.Linear(config.width, 2)
        self.post_init()

    def forward(self, x):
        return self.lin(x)
"""


def write_remote_folder(folder):
    """A folder whose architecture is built by code shipped with it (auto_map)."""
    folder.mkdir()
    (folder / "configuration_tiny.py").write_text(REMOTE_CONFIG)
    (folder / "modeling_tiny.py").write_text(REMOTE_MODEL)
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["TinyRemoteModel"], "model_type": "tiny_remote", "width": 4,
        "auto_map": {"AutoConfig": "configuration_tiny.TinyRemoteConfig",
                     "AutoModel": "modeling_tiny.TinyRemoteModel"}}))
    from safetensors.torch import save_file

    save_file({"lin.weight": torch.ones(2, 4), "lin.bias": torch.zeros(2)}, str(folder / "model.safetensors"))
    return folder


def test_code_shipped_with_the_folder_runs_only_when_trusted(tmp_path):
    from paramedit.core.model.hf_folder import remote_code_files

    folder = write_remote_folder(tmp_path / "remote")
    assert remote_code_files(folder) == ["configuration_tiny.py", "modeling_tiny.py"]
    tiny("gpt2").save_pretrained(tmp_path / "known")
    assert remote_code_files(tmp_path / "known") == [] and remote_code_files(tmp_path / "missing") == []
    s = paramedit.open_session(None, folder)
    assert s.model is None and any("--trust-remote-code" in n for n in s.checkpoint.notes)
    s = paramedit.open_session(None, folder, trust_remote_code=True)
    assert type(s.model).__name__ == "TinyRemoteModel" and s.report.clean
    assert torch.equal(s.tensor("lin.weight").detach(), torch.ones(2, 4))


def test_an_edit_log_written_against_the_files_names_lands_on_the_models_renamed_tensor(tmp_path):
    torch.manual_seed(0)
    tiny("vit").save_pretrained(tmp_path / "vit")
    s = paramedit.open_session(None, tmp_path / "vit")
    file_name = "vit.encoder.layer.0.attention.attention.query.weight"
    assert s.resolve(file_name) == "vit.layers.0.attention.q_proj.weight"
    s.stage(file_name, "[0, :]", 0.0)
    s.commit()
    assert torch.all(s.tensor("vit.layers.0.attention.q_proj.weight")[0] == 0)


def tiny_mixtral():
    return transformers.MixtralForCausalLM(transformers.MixtralConfig(
        num_hidden_layers=1, hidden_size=16, intermediate_size=32, num_attention_heads=2, num_key_value_heads=1,
        vocab_size=64, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=32))


def test_fused_experts_are_converted_the_way_transformers_loads_them_and_saved_back(tmp_path):
    """Issue 11: a tiny Mixtral reported 6 model tensors missing and 26 unexpected (per-expert w1/w2/w3
    against fused gate_up_proj/down_proj), so the fused experts kept random values."""
    torch.manual_seed(0)
    model = tiny_mixtral()
    model.save_pretrained(tmp_path / "mixtral")
    from safetensors.torch import load_file

    before = load_file(tmp_path / "mixtral" / "model.safetensors")
    s = paramedit.open_session(None, tmp_path / "mixtral")
    assert s.report.clean, s.report.summary()
    assert set(s.report.converted_from) == {"model.layers.0.mlp.experts.gate_up_proj",
                                            "model.layers.0.mlp.experts.down_proj"}
    for name, value in model.state_dict().items():
        assert torch.equal(s.model.state_dict()[name], value), name
    s.stage("model.layers.0.mlp.experts.gate_up_proj", "[2, 0, :]", 0.0)
    s.commit()
    assert s.edited_names() == {"model.layers.0.mlp.experts.gate_up_proj"}
    s.save(tmp_path / "mixtral")
    after = load_file(tmp_path / "mixtral" / "model.safetensors")
    assert list(after) == list(before) or set(after) == set(before)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["model.layers.0.block_sparse_moe.experts.2.w1.weight"]
    reloaded = transformers.MixtralForCausalLM.from_pretrained(tmp_path / "mixtral")
    assert torch.all(reloaded.model.layers[0].mlp.experts.gate_up_proj[2, 0] == 0)


def test_a_spec_building_the_converted_architecture_loads_the_folder_too(tmp_path):
    torch.manual_seed(0)
    model = tiny_mixtral()
    model.save_pretrained(tmp_path / "mixtral")
    (tmp_path / "spec.py").write_text(
        "from transformers import MixtralConfig, MixtralForCausalLM\n"
        f"def make():\n    return MixtralForCausalLM(MixtralConfig.from_pretrained({str(tmp_path / 'mixtral')!r}))\n")
    s = paramedit.open_session(f"{tmp_path / 'spec.py'}:make", tmp_path / "mixtral")
    assert s.report.clean and s.report.assigned
    assert torch.equal(s.tensor("model.layers.0.mlp.experts.down_proj").detach(),
                       model.model.layers[0].mlp.experts.down_proj.detach())


def test_a_spec_over_a_bfloat16_file_says_what_its_conversion_copies_and_dtype_file_keeps_it(tmp_path):
    """Issue 11: a float32 spec over a bfloat16 file converted every tensor (+2x memory) without saying so."""
    torch.manual_seed(0)
    model = tiny("llama")
    model.to(torch.bfloat16).save_pretrained(tmp_path / "llama")
    (tmp_path / "spec.py").write_text(
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        f"def make():\n    return LlamaForCausalLM(LlamaConfig.from_pretrained({str(tmp_path / 'llama')!r}))\n")
    spec = f"{tmp_path / 'spec.py'}:make"
    converted = paramedit.open_session(spec, tmp_path / "llama", dtype="model")
    assert {p.dtype for p in converted.model.parameters()} == {torch.float32}
    assert any("converted" in n and "bfloat16 to the model's float32: a copy of" in n for n in converted.report.notes)
    kept = paramedit.open_session(spec, tmp_path / "llama", dtype="file")
    assert {p.dtype for p in kept.model.parameters()} == {torch.bfloat16} and not kept.report.converted
    assert all(mapped(kept, p) for p in kept.model.parameters())
    with pytest.raises(paramedit.ModelSpecError, match="--dtype 'int8'"):
        paramedit.open_session(spec, tmp_path / "llama", dtype="int8")


def test_a_from_pretrained_spec_is_built_empty_even_where_transformers_would_fetch_hub_kernels(tmp_path, monkeypatch):
    # transformers 5.25 with the `kernels` package kernelizes at the end of from_pretrained and
    # refuses parameters on meta, which sent paramedit to a full build plus a copy of every tensor.
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    seen = []
    real = transformers.LlamaForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(os.environ.get("USE_HUB_KERNELS"))
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.LlamaForCausalLM, "from_pretrained", classmethod(spy))
    tiny("llama").save_pretrained(tmp_path / "llama")
    s = paramedit.open_session("transformers:LlamaForCausalLM.from_pretrained", tmp_path / "llama",
                               model_kwargs={"pretrained_model_name_or_path": str(tmp_path / "llama")})
    assert seen == ["0"]  # off while building with empty parameters only
    assert "USE_HUB_KERNELS" not in os.environ
    assert not any("copied the checkpoint in" in n for n in s.report.notes), s.report.notes
    assert all(mapped(s, p) for p in s.model.parameters())
