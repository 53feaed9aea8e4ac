"""Issue 13: Save As offers the format the session was opened from, in the folder it came from
(a .pt saves as .pt, a .safetensors as .safetensors, a Hugging Face folder as a new folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog
from safetensors.torch import save_file
from torch import nn

import paramedit
from paramedit.core.checkpoints.formats import load_checkpoint
from paramedit.demo import demo_checkpoint
from paramedit.qt import prompts
from paramedit.qt.save_defaults import FILTERS, complete_save_path, save_default
from tests.qt.window_helpers import action

REAL_ASK_SAVE_PATH = prompts.ask_save_path  # before conftest stubs every ask_*


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _state() -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in _mlp().state_dict().items()}


def _pt(folder: Path, name: str = "run.pt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(_state(), folder / name)
    return folder / name


def _safetensors(folder: Path, name: str = "weights.safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_state(), str(folder / name))
    return folder / name


def _hf_folder(folder: Path) -> Path:
    _safetensors(folder, "model.safetensors")
    return folder


@pytest.mark.parametrize(("make", "expected"), [
    (lambda d: _pt(d / "ckpts"), "run.edited.pt"),
    (lambda d: _pt(d / "ckpts", "pytorch_weights.bin"), "pytorch_weights.edited.bin"),
    (lambda d: _safetensors(d / "ckpts"), "weights.edited.safetensors"),
])
def test_a_file_saves_in_its_own_format_beside_itself(tmp_path, make, expected):
    path = make(tmp_path)
    assert save_default(load_checkpoint(path), "/elsewhere") == (str(path.parent), expected)


def test_a_folder_saves_as_a_new_folder_beside_it_that_core_writes_whole(tmp_path):
    folder = _hf_folder(tmp_path / "tiny-v1.5")
    ckpt = load_checkpoint(folder)
    where, name = save_default(ckpt, "/elsewhere")
    assert (where, name) == (str(tmp_path), "tiny-v1.5-edited")  # a dot in a folder's name is no file suffix
    session = paramedit.open_session(_mlp(), folder)
    assert session.plan_save(Path(where) / name).new_folder == tmp_path / name


def test_no_checkpoint_or_the_demo_saves_in_the_last_folder(tmp_path):
    assert save_default(None, str(tmp_path)) == (str(tmp_path), "model.edited.safetensors")
    assert save_default(load_checkpoint(demo_checkpoint()), str(tmp_path)) == (
        str(tmp_path), "demo.edited.safetensors")


def test_the_extension_follows_the_chosen_filter_when_none_is_typed():
    assert complete_save_path("/x/out", FILTERS["torch"]) == "/x/out.pt"
    assert complete_save_path("/x/out", FILTERS["safetensors"]) == "/x/out.safetensors"
    assert complete_save_path("/x/out", FILTERS["folder"]) == "/x/out"
    assert complete_save_path("/x/out.ckpt", FILTERS["safetensors"]) == "/x/out.ckpt"


def test_save_as_in_the_window_offers_pt_for_a_pt_and_writes_a_pt(make_window, qtbot, tmp_path, monkeypatch):
    path = _pt(tmp_path / "run")
    window = make_window(paramedit.open_session(_mlp(), path))
    window.session.stage("0.bias", "[0]", 0.5)
    action(window, "commitAction").trigger()
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(prompts, "ask_save_path",
                        lambda parent, folder, suggested: asked.append((folder, suggested)) or str(Path(folder) / suggested))
    action(window, "saveAsAction").trigger()
    assert asked == [(str(path.parent), "run.edited.pt")]
    out = path.parent / "run.edited.pt"
    qtbot.waitUntil(lambda: not window.busy and out.exists(), timeout=20000)
    assert torch.load(out, weights_only=True)["0.bias"][0].item() == 0.5  # a torch file, not safetensors


def _look_at_dialog(seen: dict, answer: str | None) -> None:
    """When the save dialog opens: note what it offers, then type ``answer`` and accept (None: cancel)."""
    tries = [0]

    def look() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            tries[0] += 1
            if tries[0] < 500:
                QTimer.singleShot(10, look)
            return
        seen.update(filter=dialog.selectedNameFilter(), folder=dialog.directory().absolutePath(),
                    files=dialog.selectedFiles(), filters=dialog.nameFilters())
        if answer is None:
            dialog.reject()
        else:
            dialog.selectFile(answer)
            dialog.accept()

    QTimer.singleShot(0, look)


@pytest.mark.parametrize(("make", "name", "selected"), [
    (lambda d: _pt(d / "a"), "run.edited.pt", FILTERS["torch"]),
    (lambda d: _safetensors(d / "b"), "weights.edited.safetensors", FILTERS["safetensors"]),
    (lambda d: _hf_folder(d / "c" / "hf"), "hf-edited", FILTERS["folder"]),
])
def test_the_real_dialog_selects_the_format_and_folder(make_window, tmp_path, monkeypatch, make, name, selected):
    source = make(tmp_path)
    window = make_window(paramedit.open_session(_mlp(), source))
    monkeypatch.setattr(prompts, "ask_save_path", REAL_ASK_SAVE_PATH)
    seen: dict = {}
    _look_at_dialog(seen, None)
    assert window.files._ask_save_path() is None
    where = source.parent
    assert seen["filter"] == selected and seen["filters"][0] == selected
    assert Path(seen["folder"]) == where
    assert [Path(f) for f in seen["files"]] == [where / name]


def test_the_real_dialog_gives_a_folder_without_an_extension(qapp, tmp_path):
    seen: dict = {}
    _look_at_dialog(seen, "copy-edited")
    assert REAL_ASK_SAVE_PATH(None, str(tmp_path), "hf-edited") == str(tmp_path / "copy-edited")
    assert seen["filter"] == FILTERS["folder"]
    _look_at_dialog(seen, "plain")
    assert REAL_ASK_SAVE_PATH(None, str(tmp_path), "x.edited.pt") == str(tmp_path / "plain.pt")
