"""The probe (issue 12): what an edit does to the model's outputs, in core and on the command line."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

import paramedit
from paramedit.cli import main

CLASSIFIER = """import torch
from torch import nn


def make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))


def example_inputs():
    return (torch.randn(4, 784),)
"""


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def classifier(tmp_path):
    (tmp_path / "clf.py").write_text(CLASSIFIER)
    namespace: dict = {}
    exec(compile(CLASSIFIER, "clf", "exec"), namespace)  # the same weights, to compute the truth here
    model = namespace["make"]()
    torch.save(model.state_dict(), tmp_path / "clf.pt")
    log = tmp_path / "zero_0_4.json"
    log.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": [
        {"op": "set", "target": "2.weight", "index": "[0:5, :]", "value": 0.0},
        {"op": "set", "target": "2.bias", "index": "[0:5]", "value": -20.0}]}))
    return tmp_path, model


def test_probe_edits_reports_the_change_torch_computes(classifier, capsys):
    """The classifier demonstration: zero the class 0-4 rows, see predictions change."""
    folder, model = classifier
    code, out, err = run(["probe", f"{folder / 'clf.py'}:make", folder / "clf.pt", "--edits",
                          folder / "zero_0_4.json", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"input", "before", "after", "change"}
    torch.manual_seed(0)
    (x,) = (torch.randn(4, 784),)  # example_inputs(), seeded as paramedit seeds it
    with torch.no_grad():
        before = model(x)
        edited = copy.deepcopy(model)
        edited[2].weight[0:5] = 0.0
        edited[2].bias[0:5] = -20.0
        after = edited(x)
    p, q = torch.log_softmax(before.double(), -1), torch.log_softmax(after.double(), -1)
    kl = float((p.exp() * (p - q)).sum(-1).mean())
    change = data["change"]
    assert change["kl"] == pytest.approx(kl, rel=1e-6)
    assert change["max_abs_logit_diff"] == pytest.approx(float((after - before).abs().max()), rel=1e-5)
    assert change["top1_changed"] == int((before.argmax(-1) != after.argmax(-1)).sum())
    assert [r[0]["index"] for r in data["before"]["top_k"]] == before.argmax(-1).tolist()
    assert all(r[0]["index"] >= 5 for r in data["after"]["top_k"])  # classes 0-4 are gone
    assert all(len(r) == 5 and r[0]["label"] is None for r in data["before"]["top_k"])
    assert (folder / "clf.pt").stat().st_size > 0 and torch.equal(
        torch.load(folder / "clf.pt", weights_only=True)["2.bias"], model[2].bias.detach())  # nothing written


def test_probe_runs_in_eval_mode_without_gradients_and_restores_the_mode():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.9), nn.Linear(8, 3))
    model.train()
    s = paramedit.open_session(model)
    x = (torch.randn(2, 4),)
    first, second = s.probe(x), s.probe(x)
    assert torch.equal(first.scores, second.scores)  # dropout was off: eval mode
    assert model.training and all(p.grad is None for p in model.parameters())


def test_an_output_that_is_not_classes_is_summarised_by_stats(capsys):
    s = paramedit.open_session(nn.Conv2d(3, 2, 1))
    result = s.probe((torch.randn(1, 3, 4, 4),))
    assert not result.classes and set(result.to_json()) == {"shape", "stats"}
    assert result.to_json()["shape"] == [1, 2, 4, 4]


def _text_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["the", "capital", "of", "france", "is", "paris", "berlin", "a", "city", "[UNK]"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    torch.manual_seed(0)
    folder = tmp_path / "gpt2"
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(words),
                                                         n_positions=32)).save_pretrained(folder)
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(folder)
    return folder, words


def test_a_prompt_gives_next_tokens_as_text_and_a_greedy_continuation(tmp_path, capsys):
    folder, words = _text_folder(tmp_path)
    log = tmp_path / "head.json"
    log.write_text(json.dumps({"format": "paramedit.edits", "version": 1, "edits": [
        {"op": "set", "target": "transformer.wte.weight", "index": "[5, :]", "value": 0.0}]}))
    code, out, err = run(["probe", folder, "--prompt", "the capital of france is", "--generate", "3", "--top-k", "3",
                          "--edits", log, "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["input"] == "the capital of france is"
    top = data["before"]["top_k"][0]
    assert len(top) == 3 and all(t["label"] in words for t in top)
    assert sum(t["prob"] for t in top) <= 1.0 + 1e-9
    assert len(data["before"]["generated"][0].split()) == 3 and "generated" in data["after"]


def test_bad_input_is_a_clear_message_and_changes_nothing(tmp_path, capsys, classifier):
    folder, _ = classifier
    code, _, err = run(["probe", f"{folder / 'clf.py'}:make", folder / "clf.pt", "--prompt", "hello"], capsys)
    assert code == 2 and "needs a tokenizer" in err
    code, _, err = run(["probe", f"{folder / 'clf.py'}:make", "--input", "randn(2, 5)"], capsys)
    assert code == 2 and "forward raised" in err
    code, _, err = run(["probe", f"{folder / 'clf.py'}:make", "--edits", folder / "missing.json"], capsys)
    assert code == 2
