"""Issues 3 and 6: what the window remembers between runs, and what it tells about itself.

Layout and recent files go through QSettings (a scratch file here, see conftest); About names the
versions a bug report needs; the number format and the status bar show what they say.
"""

from __future__ import annotations

import PySide6
import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

import paramedit
from paramedit.qt import settings as gui_settings
from paramedit.qt.number_format import NumberFormat
from tests.qt.window_helpers import action, select_tensor, table_text


def test_layout_and_recent_files_survive_a_restart(make_window, demo_session, qtbot, tmp_path):
    first = make_window(demo_session)
    # Inside the offscreen platform's 800 x 800 screen, so the restored geometry is not clamped.
    first.resize(760, 640)
    qtbot.waitUntil(lambda: (first.width(), first.height()) == (760, 640), timeout=2000)
    first.main_splitter.setSizes([300, 460])
    first.right_splitter.setSizes([250, 300])
    split = (first.main_splitter.sizes()[0], first.right_splitter.sizes()[0])
    gui_settings.add_recent_entry(gui_settings.RecentEntry("net.py:Net", str(tmp_path / "a.pt")))
    gui_settings.add_recent_entry(gui_settings.RecentEntry(None, str(tmp_path / "b.safetensors")))
    first.close()  # no edits: closes without asking, and saves the layout
    stored = QSettings(gui_settings.settings_file(), QSettings.Format.IniFormat)
    assert stored.value("window/geometry") is not None and stored.value("window/main_splitter") is not None

    second = make_window(paramedit.open_session(torch.nn.Linear(3, 2)))
    assert (second.width(), second.height()) == (760, 640)
    assert abs(second.main_splitter.sizes()[0] - split[0]) <= 2
    assert abs(second.right_splitter.sizes()[0] - split[1]) <= 2
    labels = [a.text() for a in second.acts.recent_menu.actions() if a.text()]
    assert labels[0].startswith("b.safetensors") and any("a.pt" in text for text in labels[1:])


def test_about_names_the_versions_a_bug_report_needs(window, qtbot):
    action(window, "aboutAction").trigger()
    box = window.findChild(QMessageBox, "aboutDialog")
    qtbot.waitUntil(box.isVisible, timeout=2000)
    text = box.text()
    for needle in (paramedit.__version__, torch.__version__, PySide6.__version__, "Model device", "cpu"):
        assert needle in text, needle
    box.close()


def test_the_window_and_its_dialogs_use_the_application_icon(window):
    assert not window.windowIcon().isNull()
    sizes = window.windowIcon().availableSizes()
    assert sizes and max(s.width() for s in sizes) >= 64


def test_number_format_changes_what_the_table_writes(make_window, qtbot):
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.1, -12345.678]]))
    window = make_window(paramedit.open_session(net))
    select_tensor(window, qtbot, "weight")
    editor = window.editor
    assert table_text(window, 0, 0) == "0.1" and not editor.decimals_spin.isEnabled()
    editor.set_number_format(NumberFormat.FIXED)
    editor.decimals_spin.setValue(2)
    assert (table_text(window, 0, 0), table_text(window, 0, 1)) == ("0.10", "-12345.68")
    assert editor.decimals_spin.isEnabled() and editor.format_button.text().startswith("Fixed")
    editor.set_number_format(NumberFormat.SCIENTIFIC)
    assert table_text(window, 0, 1) == "-1.23e+04"
    editor.set_number_format(NumberFormat.STORED)
    assert table_text(window, 0, 1) == "-12345.678" and not editor.decimals_spin.isEnabled()


def test_status_bar_shows_the_device_and_memory(window, qtbot):
    info = window.status_info
    assert info.device_label.text() == "device cpu"
    assert info.memory_label.text().startswith("tensors ") and "process " in info.memory_label.text()


def test_copy_name_from_the_tree_context_menu(window, qtbot):
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().setText("")
    menu = window.tree.context_menu_for("mlp.0.weight")
    copy = next(a for a in menu.actions() if a.text().replace("&", "").lower().startswith("copy name"))
    copy.trigger()
    assert QGuiApplication.clipboard().text() == "mlp.0.weight"
    assert window.statusBar().currentMessage() == "copied mlp.0.weight"
    stats = next(a for a in menu.actions() if a.text().startswith("Stats"))
    with qtbot.waitSignal(window.tree.statsRequested) as asked:
        stats.trigger()
    assert asked.args == ["mlp.0.weight"]
    menu.close()
