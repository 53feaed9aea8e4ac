"""Issue 11: a Hugging Face folder whose architecture comes with its own code (auto_map) asks
before that code runs, names the files, and opens as tensors alone when the answer is no."""

from __future__ import annotations

import pytest
import torch

from paramedit.qt import prompts

pytest.importorskip("transformers")


def _open(window, qtbot, folder) -> None:
    with qtbot.waitSignal(window.files.loader.loaded, timeout=30000):
        assert window.files.open_checkpoint_path(str(folder))


@pytest.mark.parametrize("run_it", [True, False])
def test_the_folder_s_code_runs_only_when_the_prompt_allows_it(make_window, qtbot, monkeypatch, tmp_path, run_it):
    from tests.core.test_hf_folders import write_remote_folder

    folder = write_remote_folder(tmp_path / "remote")
    asked = []
    monkeypatch.setattr(prompts, "ask_run_remote_code",
                        lambda _parent, where, files: asked.append((where, files)) or run_it)
    window = make_window()
    _open(window, qtbot, folder)
    assert asked == [(str(folder), ["configuration_tiny.py", "modeling_tiny.py"])]
    s = window.session
    if run_it:
        assert type(s.model).__name__ == "TinyRemoteModel"
        assert torch.equal(s.tensor("lin.weight").detach(), torch.ones(2, 4))
    else:
        assert s.model is None and any("--trust-remote-code" in n for n in s.checkpoint.notes)


def test_a_folder_transformers_knows_is_not_asked_about(make_window, qtbot, monkeypatch, tmp_path):
    import transformers

    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32,
                                                         n_positions=8)).save_pretrained(tmp_path / "gpt2")
    window = make_window()  # the autouse fixture fails the test if any prompt is asked
    _open(window, qtbot, tmp_path / "gpt2")
    assert type(window.session.model).__name__ == "GPT2LMHeadModel"
