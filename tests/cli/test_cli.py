"""The command line as DESIGN.md gives it: inspect, check, apply; exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from paramedit.cli import main


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_inspect_json_contract(models_py, linear_ckpt, capsys):
    code, out, _ = run(["inspect", linear_ckpt, "--model", f"{models_py}:Net", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["checkpoint"] == str(linear_ckpt) and data["format"] == "torch"
    assert data["container_key"] is None
    assert {"missing", "unexpected", "mismatched"} <= set(data["report"])
    tensors = {t["name"]: t for t in data["tensors"]}
    w = tensors["fc.weight"]
    assert set(w) >= {"name", "kind", "shape", "dtype", "device", "requires_grad", "numel", "aliases"}
    assert (w["kind"], w["shape"], w["dtype"], w["device"], w["requires_grad"], w["numel"]) == (
        "parameter", [3, 5], "float32", "cpu", True, 15)


def test_inspect_tensors_only_human_output(linear_ckpt, capsys):
    code, out, _ = run(["inspect", linear_ckpt], capsys)
    assert code == 0
    assert "fc.weight" in out and "[3, 5]" in out and "tensor" in out


def test_check_json_contract_and_exit_0(models_py, linear_ckpt, capsys):
    code, out, _ = run(["check", "--model", f"{models_py}:Net", "--checkpoint", linear_ckpt,
                        "--input", "randn(2, 5)", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"loss", "device", "params", "missing_grad", "replaced", "zero_grad", "cause", "not_loaded", "only", "objective"}
    assert data["missing_grad"] == [] and data["replaced"] == [] and data["device"] == "cpu"
    assert {p["name"] for p in data["params"]} == {"fc.weight", "fc.bias"}
    assert all(set(p) == {"name", "requires_grad", "has_grad", "grad_norm", "finite"} for p in data["params"])


def test_check_with_input_shape_and_mean(models_py, capsys):
    code, out, _ = run(["check", "--model", f"{models_py}:Frozen", "--input-shape", "2,4",
                        "--reduction", "mean"], capsys)
    assert code == 0
    assert "all 2 trainable parameters received finite, non-zero gradients" in out


def test_check_token_input(models_py, capsys):
    code, out, _ = run(["check", "--model", f"{models_py}:Tied", "--input", "randint(11, (1, 6))"], capsys)
    assert code == 0, out


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "{d}/missing.pt"],
        ["check", "--model", "{d}/models.py:Nope", "--input", "randn(2, 5)"],
        ["check", "--model", "{d}/models.py:Net", "--input", "__import__('os')"],
        ["check", "--model", "{d}/models.py:Net", "--input-shape", "two,five"],
        ["check", "--model", "{d}/models.py:Net", "--device", "cuda:7"],
        ["check", "--model", "{d}/models.py:Net", "--model-kwargs", "not json"],
        ["check", "--model", "{d}/models.py:Net", "--input", "randn(2, 7)"],
        ["frobnicate"],  # a mistyped command must not open a window (found by a review)
        ["inspcet", "{d}/missing.pt"],
        ["open", "{d}/missing.safetensors"],
    ],
)
def test_bad_input_exits_2_with_one_paragraph_and_no_traceback(models_py, capsys, args):
    code, _, err = run([a.format(d=models_py.parent) for a in args], capsys)
    assert code == 2
    assert err.startswith("paramedit ") and "error:" in err
    assert "Traceback" not in err


def test_apply_writes_nothing_when_an_edit_is_bad(models_py, linear_ckpt, tmp_path, capsys):
    log = tmp_path / "edits.json"
    log.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": [
        {"op": "set", "target": "fc.weight", "value": 1.0},
        {"op": "set", "target": "fc.bias", "index": "[:]", "value": [1, 2]},
    ]}))
    out = tmp_path / "out.pt"
    before = linear_ckpt.read_bytes()
    code, _, err = run(["apply", linear_ckpt, log, "-o", out], capsys)
    assert code == 2 and "edit 2" in err
    assert not out.exists()
    code, _, err = run(["apply", linear_ckpt, log, "--in-place"], capsys)
    assert code == 2 and linear_ckpt.read_bytes() == before
    assert list(tmp_path.glob(".*paramedit-tmp")) == []


@pytest.mark.parametrize("name", ["out.txt", "missing_folder/", "weights"])
def test_apply_refuses_an_output_whose_format_it_cannot_tell(linear_ckpt, tmp_path, capsys, name):
    """Found by a review: ``-o out.txt`` wrote a pickle and ``-o newdir/`` a torch *file* named newdir."""
    log = tmp_path / "edits.json"
    log.write_text(json.dumps({"format": "paramedit.edits", "version": 1,
                               "edits": [{"op": "set", "target": "fc.bias", "value": 0.0}]}))
    code, _, err = run(["apply", linear_ckpt, log, "-o", f"{tmp_path}/{name}"], capsys)
    assert code == 2 and ".safetensors" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([linear_ckpt.name, "edits.json"])  # nothing new


def test_apply_in_place(linear_ckpt, tmp_path, capsys):
    log = tmp_path / "edits.json"
    log.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": [
        {"op": "formula", "target": "fc.weight", "index": "[0]", "expr": "clamp(x * 0.5, -1, 1)"},
        {"op": "init", "target": "fc.bias", "index": "[...]", "method": "normal", "args": {"std": 0.02}, "seed": 0},
    ]}))
    original = torch.load(linear_ckpt, weights_only=True)
    code, out, _ = run(["apply", linear_ckpt, log, "--in-place", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["changed"]["fc.weight"] == 5
    edited = torch.load(linear_ckpt, weights_only=True)
    assert torch.equal(edited["fc.weight"][0], torch.clamp(original["fc.weight"][0] * 0.5, -1, 1))
    assert torch.equal(edited["fc.weight"][1:], original["fc.weight"][1:])


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "paramedit", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("paramedit ")
    helped = subprocess.run([sys.executable, "-m", "paramedit", "check", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--input-shape" in helped.stdout


def test_untrusted_pickle_is_refused_with_globals_and_trust_loads_it(tmp_path, capsys):
    """A checkpoint that pickles a custom class: refused by default, loaded with --trust."""
    module = tmp_path / "custom_ckpt_mod.py"
    module.write_text("import torch\nclass Holder:\n    def __init__(self):\n        self.w = torch.ones(2)\n")
    code = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); import custom_ckpt_mod as m\n"
        "torch.save({'fc.weight': torch.ones(2, 2), 'extra': m.Holder()}, sys.argv[2])\n"
    )
    ckpt = tmp_path / "custom.pt"
    subprocess.run([sys.executable, "-c", code, str(tmp_path), str(ckpt)], check=True)
    rc, _, err = run(["inspect", ckpt], capsys)
    assert rc == 2
    assert "custom_ckpt_mod.Holder" in err and "--trust" in err
    sys.path.insert(0, str(tmp_path))
    try:
        rc, out, _ = run(["inspect", ckpt, "--trust", "--json"], capsys)
    finally:
        sys.path.remove(str(tmp_path))
    assert rc == 0
    assert [t["name"] for t in json.loads(out)["tensors"]] == ["fc.weight"]


def test_a_save_pretrained_folder_with_its_transformers_class(tmp_path, capsys):
    """The README's Hugging Face recipe: the class's from_pretrained as the model spec, the folder
    as the checkpoint; the check runs and the tied head is reported once."""
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=16)
    folder = tmp_path / "tiny-gpt2"
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    spec = ["--model", "transformers:AutoModelForCausalLM.from_pretrained",
            "--model-kwargs", json.dumps({"pretrained_model_name_or_path": str(folder)})]
    code, out, _ = run(["check", *spec, "--checkpoint", folder, "--input", "randint(50, (1, 8))", "--json"], capsys)
    assert code == 0 and json.loads(out)["missing_grad"] == []
    code, out, _ = run(["inspect", folder, *spec, "--json"], capsys)
    tensors = {t["name"]: t for t in json.loads(out)["tensors"]}
    assert tensors["transformer.wte.weight"]["aliases"] == ["lm_head.weight"] and "lm_head.weight" not in tensors
