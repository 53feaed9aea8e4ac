"""Checkpoint formats, written with the same calls real tools use, loaded by ``load_checkpoint``.

Refusing untrusted pickles and rejecting damaged files is in ``test_checkpoint_safety.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file, save_model
from torch import nn

from paramedit.core.checkpoints.formats import (
    LoadedCheckpoint,
    detect_format,
    find_shared_aliases,
    load_checkpoint,
)
from paramedit.core.errors import CheckpointError


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


class TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.mid = nn.Linear(4, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight


def tiny() -> Tiny:
    torch.manual_seed(0)
    return Tiny()


def assert_matches(ckpt: LoadedCheckpoint, state: dict[str, torch.Tensor]) -> None:
    assert list(ckpt.tensors) == list(state)
    for name, value in state.items():
        assert torch.equal(ckpt.tensors[name], value), name
        assert ckpt.tensors[name].device.type == "cpu"


# ---------------------------------------------------------------- torch.save files


def test_plain_state_dict_is_memory_mapped(tmp_path: Path) -> None:
    model = tiny()
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)

    ckpt = load_checkpoint(path)

    assert detect_format(path) == "torch"
    assert ckpt.format == "torch" and ckpt.mmapped and not ckpt.trusted
    assert ckpt.files == [path] and ckpt.path == path
    assert ckpt.container_key is None and ckpt.stripped_prefix is None
    assert ckpt.aliases == {} and ckpt.skipped == {} and ckpt.other_containers == []
    assert_matches(ckpt, model.state_dict())


def test_writing_a_loaded_tensor_never_changes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(tiny().state_dict(), path)
    before = path.read_bytes()

    ckpt = load_checkpoint(path)
    ckpt.tensors["fc1.weight"].fill_(123.0)  # mmap is copy-on-write

    assert path.read_bytes() == before
    assert torch.all(load_checkpoint(path).tensors["fc1.weight"] != 123.0)


def test_legacy_file_loads_without_mmap_and_says_so(tmp_path: Path) -> None:
    model = tiny()
    path = tmp_path / "legacy.pth"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)

    ckpt = load_checkpoint(path)

    assert detect_format(path) == "torch-legacy"
    assert ckpt.format == "torch-legacy" and not ckpt.mmapped
    assert any("legacy (non-zip)" in n and "memory-mapped" in n for n in ckpt.notes)
    assert_matches(ckpt, model.state_dict())


def test_dataparallel_prefix_is_stripped(tmp_path: Path) -> None:
    model = tiny()
    wrapped = nn.DataParallel(model)  # on CPU it just wraps: real "module." keys
    path = tmp_path / "ddp.pt"
    torch.save(wrapped.state_dict(), path)
    assert all(k.startswith("module.") for k in torch.load(path, weights_only=True))

    ckpt = load_checkpoint(path)

    assert ckpt.stripped_prefix == "module."
    assert any("stripped prefix 'module.'" in n for n in ckpt.notes)
    assert_matches(ckpt, model.state_dict())


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_prefix_and_both_prefixes_are_stripped(tmp_path: Path) -> None:
    model = tiny()
    compiled = torch.compile(model)  # compiles lazily: state_dict() needs no compiler
    torch.save(compiled.state_dict(), tmp_path / "compiled.pt")
    torch.save(nn.DataParallel(compiled).state_dict(), tmp_path / "both.pt")

    one = load_checkpoint(tmp_path / "compiled.pt")
    both = load_checkpoint(tmp_path / "both.pt")

    assert one.stripped_prefix == "_orig_mod."
    assert both.stripped_prefix == "module._orig_mod."
    assert_matches(one, model.state_dict())
    assert_matches(both, model.state_dict())


def test_prefix_is_kept_unless_every_name_has_it(tmp_path: Path) -> None:
    state = {"module.fc.weight": torch.ones(2, 2), "head.weight": torch.ones(2)}
    torch.save(state, tmp_path / "mixed.pt")

    ckpt = load_checkpoint(tmp_path / "mixed.pt")

    assert ckpt.stripped_prefix is None
    assert list(ckpt.tensors) == ["module.fc.weight", "head.weight"]


def test_cuda_saved_file_loads_on_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The only thing a CUDA save adds is the location string "cuda:0" in each storage record.

    Without a GPU, torch.save's own location tagger is made to report "cuda:0", so the file on
    disk is byte-for-byte what a CUDA save writes; plain ``torch.load`` then refuses it here.
    """
    model = tiny()
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(model.state_dict(), tmp_path / "cuda.pt")
    torch.save(model.state_dict(), tmp_path / "cuda_legacy.pt", _use_new_zipfile_serialization=False)
    monkeypatch.undo()
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tmp_path / "cuda.pt", weights_only=True)

    for name in ("cuda.pt", "cuda_legacy.pt"):
        assert_matches(load_checkpoint(tmp_path / name), model.state_dict())


# ---------------------------------------------------------------- nested containers


def test_lightning_checkpoint_uses_state_dict(tmp_path: Path) -> None:
    model = tiny()
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    # What pytorch_lightning.Trainer.save_checkpoint writes (LightningModule keeps the net at .model).
    lightning = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": torch.tensor(0.25)}},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [sched.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 0.001},
    }
    path = tmp_path / "epoch=3-step=120.ckpt"
    torch.save(lightning, path)

    ckpt = load_checkpoint(path)

    assert ckpt.container_key == "state_dict"
    assert ckpt.other_containers == []
    assert ckpt.metadata["epoch"] == "3" and ckpt.metadata["global_step"] == "120"
    assert any("used key 'state_dict'" in n for n in ckpt.notes)
    assert_matches(ckpt, {f"model.{k}": v for k, v in model.state_dict().items()})


def test_model_ema_optimizer_epoch_dict(tmp_path: Path) -> None:
    model, ema = tiny(), Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    path = tmp_path / "train.pt"
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)

    auto = load_checkpoint(path)
    chosen = load_checkpoint(path, container_key="ema")

    assert auto.container_key == "model" and auto.other_containers == ["ema"]
    assert any("ema" in n and "not used" in n for n in auto.notes)
    assert_matches(auto, model.state_dict())
    assert chosen.container_key == "ema" and chosen.other_containers == ["model"]
    assert_matches(chosen, ema.state_dict())
    with pytest.raises(CheckpointError, match=r"no tensor container 'generator'.*model, ema"):
        load_checkpoint(path, container_key="generator")


def test_nested_containers_give_a_dotted_key(tmp_path: Path) -> None:
    model = tiny()
    torch.save({"model": {"module": model.state_dict()}, "step": 7}, tmp_path / "a.pt")
    torch.save({"ema.module": model.state_dict()}, tmp_path / "b.pt")

    a = load_checkpoint(tmp_path / "a.pt")
    b = load_checkpoint(tmp_path / "b.pt", container_key="ema.module")

    assert a.container_key == "model.module"
    assert b.container_key == "ema.module"
    assert_matches(a, model.state_dict())
    assert_matches(b, model.state_dict())
    assert load_checkpoint(tmp_path / "a.pt", container_key="model.module").container_key == "model.module"


def test_tensors_mixed_with_other_values_at_top_level(tmp_path: Path) -> None:
    model = tiny()
    torch.save({**model.state_dict(), "epoch": 3, "note": "best"}, tmp_path / "mixed.pt")

    ckpt = load_checkpoint(tmp_path / "mixed.pt")

    assert ckpt.container_key is None
    assert_matches(ckpt, model.state_dict())
    assert any("ignored 2 non-tensor entries" in n for n in ckpt.notes)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated:UserWarning")
def test_dense_only_sparse_quantized_meta_are_skipped_complex_kept(tmp_path: Path) -> None:
    state = {
        "w": torch.ones(2, 2),
        "cplx": torch.ones(3, dtype=torch.complex64),
        "sparse": torch.eye(3).to_sparse(),
        "q": torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8),
        "meta": torch.empty(3, device="meta"),
        "p": nn.Parameter(torch.ones(2)),
    }
    torch.save(state, tmp_path / "kinds.pt")

    ckpt = load_checkpoint(tmp_path / "kinds.pt")

    assert list(ckpt.tensors) == ["w", "cplx", "p"]
    assert type(ckpt.tensors["p"]) is torch.Tensor and not ckpt.tensors["p"].requires_grad
    assert set(ckpt.skipped) == {"sparse", "q", "meta"}
    assert "sparse" in ckpt.skipped["sparse"] and "quantized" in ckpt.skipped["q"]
    assert "meta" in ckpt.skipped["meta"]


# ---------------------------------------------------------------- aliases (tied weights)


def test_shared_storage_is_reported_as_alias(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TiedLM()
    torch.save(model.state_dict(), tmp_path / "tied.pt")
    torch.save(model.state_dict(), tmp_path / "tied_legacy.pt", _use_new_zipfile_serialization=False)

    for name in ("tied.pt", "tied_legacy.pt"):
        ckpt = load_checkpoint(tmp_path / name)
        assert ckpt.aliases == {"head.weight": "emb.weight"}
        t = ckpt.tensors
        assert t["head.weight"].untyped_storage().data_ptr() == t["emb.weight"].untyped_storage().data_ptr()


def test_find_shared_aliases_needs_the_same_view() -> None:
    base = torch.arange(12.0)
    tensors = {
        "a": base[:6].view(2, 3),
        "b": base[:6].view(2, 3),  # same view: alias of a
        "c": base[6:].view(2, 3),  # same storage, other offset: not an alias
        "d": base[:6].view(3, 2),  # same bytes, other shape: not an alias
        "e": torch.empty(0),
        "f": torch.empty(0),
    }
    assert find_shared_aliases(tensors) == {"b": "a"}


def test_safetensors_file_keeps_metadata(tmp_path: Path) -> None:
    model = tiny()
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), path, metadata={"author": "me"})

    ckpt = load_checkpoint(path)

    assert detect_format(path) == "safetensors"
    assert ckpt.format == "safetensors" and ckpt.mmapped
    assert ckpt.metadata["author"] == "me"
    assert set(ckpt.tensors) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt.tensors[k], v)
    before = path.read_bytes()
    ckpt.tensors["fc1.weight"].zero_()
    assert path.read_bytes() == before
    with pytest.raises(CheckpointError, match="flat safetensors"):
        load_checkpoint(path, container_key="model")


def test_safetensors_save_model_restores_tied_names(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TiedLM()
    path = tmp_path / "tied.safetensors"
    save_model(model, str(path))  # drops one tied name and records it in the metadata

    ckpt = load_checkpoint(path)

    assert set(ckpt.tensors) == set(model.state_dict())
    alias, canonical = next(iter(ckpt.aliases.items()))
    assert {alias, canonical} == {"head.weight", "emb.weight"}
    assert ckpt.tensors[alias] is ckpt.tensors[canonical]


def test_paramedit_alias_metadata_is_honoured(tmp_path: Path) -> None:
    w = torch.randn(3, 3)
    save_file({"enc.w": w, "lin.w": w.clone()},
              tmp_path / "a.safetensors", metadata={"paramedit.aliases": json.dumps({"dec.w": "enc.w"})})
    save_file({"lin.w": w, "enc.w": w.clone()},
              tmp_path / "b.safetensors", metadata={"paramedit.aliases": json.dumps({"lin.w": "enc.w"})})

    a = load_checkpoint(tmp_path / "a.safetensors")
    b = load_checkpoint(tmp_path / "b.safetensors")

    assert a.aliases == {"dec.w": "enc.w"} and a.tensors["dec.w"] is a.tensors["enc.w"]
    assert "lin.w" not in a.aliases
    # present in the file too, with the same values: the metadata decides which name is canonical
    assert b.aliases == {"lin.w": "enc.w"} and b.tensors["lin.w"] is b.tensors["enc.w"]


# ---------------------------------------------------------------- sharded and Hugging Face


def test_sharded_safetensors_from_huggingface_hub(tmp_path: Path) -> None:
    hub = pytest.importorskip("huggingface_hub")
    torch.manual_seed(0)
    model = TiedLM()
    folder = tmp_path / "sharded"
    folder.mkdir()
    hub.save_torch_state_dict(model.state_dict(), folder, max_shard_size=200)
    index = folder / "model.safetensors.index.json"

    via_index = load_checkpoint(index)
    via_folder = load_checkpoint(folder)

    assert detect_format(index) == "safetensors-sharded" and via_index.format == "safetensors-sharded"
    assert via_folder.format == "hf-folder"
    assert via_folder.metadata["paramedit.weights_format"] == "safetensors-sharded"
    assert len(via_index.files) > 1 and via_index.mmapped
    assert set(via_index.tensors) == set(model.state_dict())  # the tied name comes from the index
    assert via_index.aliases == {"head.weight": "emb.weight"}
    for k, v in model.state_dict().items():
        assert torch.equal(via_folder.tensors[k], v)


def test_sharded_torch_bin_from_huggingface_hub(tmp_path: Path) -> None:
    hub = pytest.importorskip("huggingface_hub")
    model = tiny()
    folder = tmp_path / "bin"
    folder.mkdir()
    hub.save_torch_state_dict(model.state_dict(), folder, max_shard_size=64, safe_serialization=False)
    index = folder / "pytorch_model.bin.index.json"

    ckpt = load_checkpoint(index)

    assert detect_format(index) == "torch-sharded" and ckpt.format == "torch-sharded"
    assert len(ckpt.files) > 1 and ckpt.mmapped and not ckpt.trusted
    assert_matches(ckpt, model.state_dict())
    assert load_checkpoint(folder).format == "hf-folder"


@pytest.fixture(scope="module")
def gpt2() -> nn.Module:
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64)
    return transformers.GPT2LMHeadModel(config)


def _check_gpt2(ckpt: LoadedCheckpoint, model: nn.Module) -> None:
    state = model.state_dict()
    # transformers drops the tied lm_head.weight (it is transformer.wte.weight); the model re-ties it.
    assert set(ckpt.tensors) | {"lm_head.weight"} == set(state)
    for name, value in ckpt.tensors.items():
        assert torch.equal(value, state[name]), name


def test_transformers_save_pretrained_folder(tmp_path: Path, gpt2: nn.Module) -> None:
    gpt2.save_pretrained(tmp_path / "gpt2")

    ckpt = load_checkpoint(tmp_path / "gpt2")

    assert ckpt.format == "hf-folder" and ckpt.files == [tmp_path / "gpt2" / "model.safetensors"]
    assert ckpt.metadata["paramedit.config_json"] == str(tmp_path / "gpt2" / "config.json")
    _check_gpt2(ckpt, gpt2)


def test_saving_into_a_save_pretrained_folder_replaces_the_file_transformers_reads(
    tmp_path: Path, gpt2: nn.Module
) -> None:
    """Found by a review: saving into the folder wrote a sharded set beside model.safetensors,
    which both transformers and paramedit go on reading, so the edit was lost."""
    import paramedit

    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "gpt2"
    gpt2.save_pretrained(folder)
    s = paramedit.open_session(checkpoint=folder)
    s.stage("transformer.wte.weight", "[3, :]", 0.25)
    s.commit()
    assert s.save(folder) == folder / "model.safetensors"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".index.json") or "-of-" in p.name]
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(folder)
    assert (reloaded.transformer.wte.weight[3] == 0.25).all()
    assert reloaded.lm_head.weight is reloaded.transformer.wte.weight  # still tied
    assert torch.equal(reloaded.transformer.wte.weight[4], gpt2.transformer.wte.weight[4])


def test_saving_into_a_folder_never_replaces_a_checkpoint_that_is_not_a_hugging_face_one(tmp_path: Path) -> None:
    """Found by a review: the rule above must not overwrite a training run's checkpoint.pt."""
    import paramedit

    folder = tmp_path / "run"
    folder.mkdir()
    run_state = {"model": {"w": torch.ones(3)}, "optimizer": {"step": torch.tensor(7)}, "epoch": 7}
    torch.save(run_state, folder / "checkpoint.pt")
    (folder / "best.pth.tar").write_bytes(b"not ours")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    s = paramedit.open_session(checkpoint=_plain_checkpoint(tmp_path))
    # Issue 11: a folder holding other things is refused (a set mixed into a training run's files
    # was hard to tell apart from them), and nothing is written.
    with pytest.raises(paramedit.SaveError, match="holds other files"):
        s.save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def _plain_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "src.pt"
    torch.save({"w": torch.zeros(3)}, path)
    return path


def test_transformers_save_pretrained_sharded(tmp_path: Path, gpt2: nn.Module) -> None:
    gpt2.save_pretrained(tmp_path / "gpt2", max_shard_size="50KB")

    ckpt = load_checkpoint(tmp_path / "gpt2")

    assert ckpt.format == "hf-folder" and len(ckpt.files) > 1
    assert ckpt.metadata["paramedit.weights_format"] == "safetensors-sharded"
    _check_gpt2(ckpt, gpt2)


def test_transformers_save_pretrained_unsafe_serialization(tmp_path: Path, gpt2: nn.Module) -> None:
    try:
        gpt2.save_pretrained(tmp_path / "gpt2", safe_serialization=False)
    except TypeError:
        pytest.skip("this transformers no longer accepts safe_serialization")
    # transformers 5 ignores the flag and writes safetensors; 4.x writes pytorch_model.bin.
    ckpt = load_checkpoint(tmp_path / "gpt2")
    assert ckpt.format == "hf-folder" and ckpt.files[0].name in ("pytorch_model.bin", "model.safetensors")
    _check_gpt2(ckpt, gpt2)


# ---------------------------------------------------------------- folders


def test_folder_with_one_checkpoint_uses_it(tmp_path: Path) -> None:
    model = tiny()
    torch.save(model.state_dict(), tmp_path / "best.pth")
    torch.save({"state": {}}, tmp_path / "optimizer.pt")  # training leftovers are not candidates
    (tmp_path / "notes.txt").write_text("hi")

    ckpt = load_checkpoint(tmp_path)

    assert detect_format(tmp_path) == "folder"
    assert ckpt.format == "torch" and ckpt.path == tmp_path and ckpt.files == [tmp_path / "best.pth"]
    assert any("best.pth" in n for n in ckpt.notes)
    assert_matches(ckpt, model.state_dict())


def test_folder_with_several_or_no_checkpoints_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("nothing here")
    many = tmp_path / "many"
    many.mkdir()
    torch.save({"w": torch.ones(1)}, many / "a.pt")
    save_file({"w": torch.ones(1)}, many / "b.safetensors")

    with pytest.raises(CheckpointError, match=r"no checkpoint found in .*empty; looked for"):
        load_checkpoint(empty)
    with pytest.raises(CheckpointError, match=r"several checkpoints.*a\.pt, b\.safetensors"):
        load_checkpoint(many)
