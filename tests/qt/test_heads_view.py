"""Issue 13: "Split into heads" in the window: a head picked by name is the selection, and a fill
writes exactly its blocks of the tensor, in place."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

import paramedit
from paramedit.qt import prompts
from paramedit.qt.selection_edit_dialog import SelectionEdit
from tests.qt.window_helpers import action, select_tensor

transformers = pytest.importorskip("transformers")


def fill_zero(monkeypatch) -> list[str]:
    asked: list[str] = []

    def answer(_parent, where, _dtype, apply, *_args, **_kwargs):
        asked.append(where)
        apply(SelectionEdit("fill", value=0.0))
        return True

    monkeypatch.setattr(prompts, "ask_selection_edit", answer)
    return asked


def _gpt2(layers: int):
    """c_attn.weight is 256×768: 4 heads of 64 in each of q, k and v (Conv1D: heads are columns)."""
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=layers, n_embd=256, n_head=4, vocab_size=64,
                                                                n_positions=16))


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def test_ablating_head_2_of_gpt2_takes_five_steps_and_writes_exactly_its_three_blocks(make_window, qtbot, monkeypatch):
    w = make_window(paramedit.open_session(_gpt2(layers=2)))
    name = "transformer.h.1.attn.c_attn.weight"
    select_tensor(w, qtbot, name)
    weight = w.session.tensor(name)
    before = weight.detach().clone()
    fill_zero(monkeypatch)

    click(qtbot, w.editor.region_box.heads_button)  # 1: Split into heads
    bar = w.editor.heads_bar
    assert bar.isVisible() and "4 q/4 k/4 v heads × 64" in bar.layout_label.text()
    bar.head_combo.setCurrentIndex(2)  # 2: pick head 2 (of q, k and v)
    assert w.editor.region_box.edit.text() == "[:, 128:192]; [:, 384:448]; [:, 640:704]"
    action(w, "fillAction").trigger()  # 3 and 4: Fill, 0
    assert [e.index for e in w.session.staged] == ["[:, 128:192]", "[:, 384:448]", "[:, 640:704]"]
    action(w, "commitAction").trigger()  # 5: Commit

    head = ((torch.arange(768) // 64) % 4) == 2
    assert w.session.tensor(name) is weight and isinstance(weight, torch.nn.Parameter)
    assert torch.all(weight[:, head] == 0) and torch.equal(weight[:, ~head], before[:, ~head])
    assert w.session.run_backward(inputs=(torch.randint(0, 64, (1, 8)),)).ok


def test_one_part_s_head_windows_the_table_and_the_heatmap_to_its_block(make_window, qtbot, monkeypatch):
    w = make_window(paramedit.open_session(_gpt2(layers=1)))
    name = "transformer.h.0.attn.c_attn.weight"
    select_tensor(w, qtbot, name)
    assert w.editor.split_into_heads()
    w.editor.heads.choose(2, "k")
    model = w.editor.model
    assert (model.rowCount(), model.columnCount()) == (256, 64) and model.windows == (None, (384, 448))
    assert "index 384 of dim 1" == model.headerData(0, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    w.editor.table.prefetch_visible()
    shown = model.data(model.index(3, 5), Qt.ItemDataRole.EditRole)
    assert float(shown) == pytest.approx(float(w.session.tensor(name)[3, 389]))  # column 5 of the head is 389
    assert w.editor.heatmap.image_item().image.shape[:2] in ((256, 64), (64, 256))
    assert "k head 2" in w.editor.header.text()
    fill_zero(monkeypatch)
    action(w, "fillAction").trigger()
    assert [e.index for e in w.session.staged] == ["[:, 384:448]"]

    click(qtbot, w.editor.heads_bar.close_button)  # the whole tensor again
    assert (model.rowCount(), model.columnCount()) == (256, 768) and not w.editor.heads_bar.isVisible()
    select_tensor(w, qtbot, "transformer.h.0.mlp.c_fc.weight")
    assert model.windows == (None, None) and not w.editor.heads_bar.isVisible()


def test_grouped_query_attention_heads_of_llama(make_window, qtbot, monkeypatch):
    torch.manual_seed(0)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=64, max_position_embeddings=16))
    w = make_window(paramedit.open_session(llama))
    fill_zero(monkeypatch)
    select_tensor(w, qtbot, "model.layers.0.self_attn.k_proj.weight")  # 16×32: 2 key/value heads of 8 rows
    assert w.editor.split_into_heads()
    assert w.editor.heads_bar.head_combo.count() == 2
    w.editor.heads.choose(1, "k")
    action(w, "fillAction").trigger()
    select_tensor(w, qtbot, "model.layers.0.self_attn.o_proj.weight")  # a head's contribution: its input columns
    assert w.editor.split_into_heads()
    w.editor.heads.choose(3, "o")
    action(w, "fillAction").trigger()
    assert [(e.target, e.index) for e in w.session.staged] == [
        ("model.layers.0.self_attn.k_proj.weight", "[8:, :]"), ("model.layers.0.self_attn.o_proj.weight", "[:, 24:]")]


def test_a_model_that_cannot_tell_asks_for_the_count_until_one_fits(make_window, qtbot, monkeypatch):
    net = torch.nn.Sequential(torch.nn.Linear(16, 48))
    w = make_window(paramedit.open_session(net))
    select_tensor(w, qtbot, "0.weight")
    answers = ["abc", "5", "4x3"]
    reasons = []
    monkeypatch.setattr(prompts, "ask_head_count", lambda _p, _name, reason: reasons.append(reason) or answers.pop(0))
    click(qtbot, w.editor.region_box.heads_button)
    assert "give the number of heads" in reasons[0]
    assert "'abc' is not a number" in reasons[1]
    assert "no dimension of 0.weight (48 x 16) splits into 5 heads" in reasons[2]
    assert w.editor.heads_bar.isVisible() and w.editor.heads_bar.part_combo.count() == 4  # all, q, k, v
    assert w.editor.region_box.edit.text() == "[0:4, :]; [16:20, :]; [32:36, :]"
    assert "split into heads" in w.statusBar().currentMessage()  # not the refusal of an earlier answer


def test_cancelling_the_count_changes_nothing_and_a_plain_split_reads_as_heads(make_window, qtbot, monkeypatch):
    w = make_window(paramedit.open_session(torch.nn.Sequential(torch.nn.Linear(16, 48))))
    select_tensor(w, qtbot, "0.weight")
    monkeypatch.setattr(prompts, "ask_head_count", lambda *_a: None)
    click(qtbot, w.editor.region_box.heads_button)
    assert not w.editor.heads_bar.isVisible() and w.editor.model.windows == (None, None) and not w.session.staged
    monkeypatch.setattr(prompts, "ask_head_count", lambda *_a: "4")
    click(qtbot, w.editor.region_box.heads_button)
    assert w.editor.heads_bar.layout_label.text().startswith("head × head_dim of dim 0: 4 heads × 12")
    w.editor.heads.choose(1, "head")
    assert "head 1: 12:24 of dim 0" in w.editor.header.text() and "head head" not in w.editor.header.text()
    assert w.editor.region_box.note.text() == "head 1"
    model = w.editor.model
    assert model.headerData(0, Qt.Orientation.Vertical, Qt.ItemDataRole.DisplayRole) == "12"  # the tensor's index
