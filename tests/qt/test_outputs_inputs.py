"""Issue 12: what the Outputs panel runs the model on: an image file for a model that takes
N×C×H×W, a prompt for a language model with a tokenizer (and a head ablation seen in its
next-token list)."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtGui import QColor, QImage
from torch import nn

import paramedit
from paramedit.qt import prompts
from tests.cli.test_probe import _text_folder
from tests.qt.test_outputs_panel import direct, kl, outputs_settled
from tests.qt.window_helpers import action, select_cells, select_tensor


def _image(path, width: int, height: int, colour: str) -> str:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(colour))
    assert image.save(str(path))
    return str(path)


@pytest.fixture
def conv_window(make_window):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    session = paramedit.open_session(net)
    session.example_inputs = (torch.rand(2, 3, 8, 8),)  # pixels in [0, 1]
    return make_window(session), net


def test_an_image_file_becomes_the_input_in_the_models_channels_and_size(conv_window, qtbot, tmp_path,
                                                                         monkeypatch):
    window, net = conv_window
    panel = window.outputs_panel
    outputs_settled(window, qtbot)
    assert panel.image_button.isEnabled()
    path = _image(tmp_path / "red.png", 20, 12, "#ff0000")  # another size: scaled to 8×8
    monkeypatch.setattr(prompts, "ask_image_file", lambda *_a: path)
    panel.image_button.click()
    state = outputs_settled(window, qtbot)
    (image,) = window.probes.used_inputs
    assert image.shape == (1, 3, 8, 8)
    assert torch.allclose(image[0, 0], torch.ones(8, 8)) and not image[0, 1:].any()  # red, in [0, 1]
    assert torch.allclose(state.after.scores, direct(net, image))
    assert "red.png" in state.input_text and "1×3×8×8 in [0, 1]" in state.input_text
    assert panel.thumbnail.isVisibleTo(panel) and not panel.thumbnail.pixmap().isNull()
    assert state.before is None  # another input: nothing on it to compare with yet


def test_an_unreadable_image_is_a_message_and_the_input_stays(conv_window, qtbot, tmp_path, monkeypatch):
    window, _net = conv_window
    first = outputs_settled(window, qtbot)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    monkeypatch.setattr(prompts, "ask_image_file", lambda *_a: str(bad))
    assert not window.outputs_panel.choose_image()
    assert "could not be read as an image" in window.outputs_panel.message_label.text()
    assert window.probes.state().after is first.after and window.probes.used_inputs[0].shape == (2, 3, 8, 8)


def test_a_model_whose_input_is_not_an_image_takes_no_image(make_window, qtbot):
    session = paramedit.open_session(nn.Linear(4, 3))
    session.example_inputs = (torch.randn(2, 4),)
    window = make_window(session)
    outputs_settled(window, qtbot)
    assert not window.outputs_panel.image_button.isEnabled()
    assert not window.outputs_panel.choose_image()  # the conftest fails the test if a file dialog opened
    assert "not an image" in window.outputs_panel.message_label.text()


def test_a_prompt_shows_the_next_tokens_and_a_head_ablation_changes_them(make_window, qtbot, tmp_path,
                                                                         monkeypatch):
    """The GPT-2 demonstration: a prompt, then zero one head's value columns of c_attn."""
    folder, words = _text_folder(tmp_path)
    session = paramedit.open_session(None, folder)
    window = make_window(session)
    panel = window.outputs_panel
    qtbot.waitUntil(lambda: panel.prompt_edit.isVisibleTo(panel), timeout=20000)  # it has a tokenizer
    outputs_settled(window, qtbot, timeout=20000)
    panel.generate_spin.setValue(3)
    panel.prompt_edit.setText("the capital of france is")
    panel.prompt_edit.returnPressed.emit()
    before = outputs_settled(window, qtbot, timeout=20000)
    ids = window.probes.used_inputs.kwargs["input_ids"]
    assert ids.shape == (1, 5) and "the capital of france is" in before.input_text
    tokens = before.after.top_k[0]
    assert len(tokens) == 5 and all(t["label"] in words for t in tokens)
    assert len(before.after.generated[0].split()) == 3
    assert repr(tokens[0]["label"]) in panel.model.index(0, 2).data()  # the token's text, quoted
    expected = direct(session.model, ids).logits[0, -1]
    assert before.after.top1 == [int(expected.argmax())]

    # Head 0 of layer 0 (2 heads of 16): its value columns in the fused q|k|v weight, all rows.
    select_tensor(window, qtbot, "transformer.h.0.attn.c_attn.weight")
    select_cells(window, (0, 32), (64, 80))
    monkeypatch.setattr(prompts, "ask_selection_edit",
                        lambda _p, _r, _d, apply, _m, **_k: apply(_fill(0.0)) or True)
    action(window, "fillAction").trigger()
    assert window.session.staged[-1].index == "[:, 64:80]"
    action(window, "commitAction").trigger()
    after = outputs_settled(window, qtbot, timeout=20000)
    ablated = direct(session.model, ids).logits[0, -1]
    assert after.change.kl == pytest.approx(kl(expected[None], ablated[None]), rel=1e-5, abs=1e-9)
    assert after.change.kl > 0 and after.before.top_k[0] == tokens
    probs = torch.softmax(ablated.double(), -1)
    assert [t["index"] for t in after.after.top_k[0]] == probs.topk(5).indices.tolist()
    assert [t["prob"] for t in after.after.top_k[0]] != [t["prob"] for t in tokens]  # the list changed
    assert after.after.generated is not None and after.before.generated == before.after.generated


def _fill(value: float):
    from paramedit.qt.selection_edit_dialog import SelectionEdit

    return SelectionEdit("fill", value=value)


def test_an_image_takes_the_channels_and_range_the_example_input_has(qapp, tmp_path):
    from paramedit.core.model.inputs import ForwardInputs
    from paramedit.qt.image_input import image_slot, read_image, with_image

    path = _image(tmp_path / "white.png", 5, 7, "#ffffff")
    grey = image_slot((torch.rand(1, 1, 4, 4) * 2 - 1,))  # one channel, pixels in [-1, 1]
    assert grey is not None and (grey.low, grey.high) == (-1.0, 1.0)
    tensor, picture = read_image(path, grey)
    assert tensor.shape == (1, 1, 4, 4) and torch.allclose(tensor, torch.ones(1, 1, 4, 4))
    assert (picture.width(), picture.height()) == (4, 4)
    hf = ForwardInputs((), {"pixel_values": torch.rand(2, 3, 6, 6) * 255})  # a vision model's keyword, [0, 255]
    slot = image_slot(hf)
    assert slot is not None and slot.keyword == "pixel_values" and slot.high == 255.0
    replaced = with_image(hf, slot, read_image(path, slot)[0])
    assert replaced.kwargs["pixel_values"].shape == (1, 3, 6, 6)
    assert torch.allclose(replaced.kwargs["pixel_values"], torch.full((1, 3, 6, 6), 255.0))
    assert image_slot((torch.randn(2, 784),)) is None and image_slot((torch.randint(0, 9, (1, 3, 4, 4)),)) is None


def test_a_model_without_an_input_is_told_in_the_window_s_words(make_window, qtbot):
    window = make_window(paramedit.open_session(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())))
    qtbot.waitUntil(lambda: "Input…" in window.outputs_panel.message_label.text(), timeout=15000)
    text = window.outputs_panel.message_label.text()
    assert "choose one with Input…" in text and "randn(1, 3, 32, 32)" in text
    assert "--input" not in text  # found by review: the command line's advice, in red, in the window
