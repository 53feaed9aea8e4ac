"""The main window's actions, menus and toolbar, built in one place so the window stays short."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QStyle, QToolBar, QWidget

from paramedit.core.model.devices import available_devices, device_label

if TYPE_CHECKING:
    from paramedit.qt.main_window import MainWindow


@dataclass
class WindowActions:
    """Every QAction of the window (object names are part of the GUI contract)."""

    open_model: QAction
    open_checkpoint: QAction
    open_checkpoint_folder: QAction
    open_demo: QAction
    save: QAction
    save_as: QAction
    export_edits: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    commit: QAction
    discard: QAction
    fill: QAction
    formula: QAction
    init: QAction
    copy_from: QAction
    copy: QAction
    paste: QAction
    go_to: QAction
    backward: QAction
    backward_input: QAction
    backward_edited: QAction
    scan: QAction
    compare: QAction
    compare_opened: QAction
    compare_again: QAction
    clear_compare: QAction
    show_report: QAction
    about: QAction
    zoom_in: QAction
    zoom_out: QAction
    zoom_reset: QAction
    present: QAction
    recent_menu: QMenu
    device_combo: QComboBox

    def session_actions(self) -> list[QAction]:
        """Actions that need an open session and an idle window."""
        return [self.save, self.save_as, self.export_edits, self.undo, self.redo, self.commit, self.discard,
                self.fill, self.formula, self.init, self.copy_from, self.copy, self.paste, self.go_to, self.backward,
                self.backward_input, self.backward_edited, self.scan, self.compare, self.compare_opened,
                self.compare_again, self.clear_compare]


def _action(window: QWidget, text: str, name: str, slot, shortcut=None, icon: QStyle.StandardPixmap | None = None,
            tip: str = "") -> QAction:
    action = QAction(text, window)
    action.setObjectName(name)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if icon is not None:
        action.setIcon(window.style().standardIcon(icon))
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    return action


def build_actions(w: MainWindow) -> WindowActions:
    sp = QStyle.StandardPixmap
    key = QKeySequence.StandardKey
    combo = QComboBox(w)
    combo.setObjectName("deviceCombo")
    combo.setToolTip("Where the model lives; changing it moves the model (parameters keep their identity)")
    for device in available_devices():
        combo.addItem(device_label(device), device)
    actions = WindowActions(
        open_model=_action(w, "Open &Model…", "openModelAction", lambda: w.files.open_model_dialog(), key.Open, sp.SP_DialogOpenButton,
                           "Open a model file (file.py:NAME) with an optional checkpoint"),
        open_checkpoint=_action(w, "Open &Checkpoint…", "openCheckpointAction", lambda: w.files.open_checkpoint_dialog(),
                                "Ctrl+Shift+O", tip="Open a checkpoint into the current model (or on its own)"),
        open_checkpoint_folder=_action(w, "Open Checkpoint &Folder…", "openCheckpointFolderAction",
                                       lambda: w.files.open_checkpoint_folder_dialog()),
        open_demo=_action(w, "Open &Demo Model", "openDemoAction", lambda: w.files.open_demo()),
        save=_action(w, "&Save", "saveAction", lambda: w.files.save(), key.Save, sp.SP_DialogSaveButton,
                     "Save the tensors (.safetensors or .pt), atomically"),
        save_as=_action(w, "Save &As…", "saveAsAction", lambda: w.files.save_as(), key.SaveAs),
        export_edits=_action(w, "&Export Edit Log…", "exportEditsAction", lambda: w.files.export_edit_log(),
                             tip="Write the committed edits as a paramedit.edits JSON log (replay with paramedit apply)"),
        quit=_action(w, "&Quit", "quitAction", w.close, key.Quit),
        undo=_action(w, "&Undo Commit", "undoAction", w.undo, "Ctrl+Z", sp.SP_ArrowBack, "Undo the last commit"),
        redo=_action(w, "&Redo Commit", "redoAction", w.redo, "Ctrl+Shift+Z", sp.SP_ArrowForward,
                     "Redo the last undone commit"),
        commit=_action(w, "&Commit", "commitAction", w.commit, "Ctrl+Return", sp.SP_DialogApplyButton,
                       "Write the staged edits into the model in place (Ctrl+Enter)"),
        discard=_action(w, "&Discard Staged Edits", "discardAction", w.discard, None, sp.SP_DialogDiscardButton,
                        "Drop the staged edits"),
        fill=_action(w, "&Fill Selection…", "fillAction", lambda: w.editor.edit_selection("fill"), "Ctrl+F"),
        formula=_action(w, "F&ormula on Selection…", "formulaAction", lambda: w.editor.edit_selection("formula"),
                        "Ctrl+E"),
        init=_action(w, "&Init Selection…", "initAction", lambda: w.editor.edit_selection("init"), "Ctrl+I"),
        copy_from=_action(w, "Copy From &Checkpoint…", "copyFromAction", lambda: w.editor.edit_selection("copy"),
                          "Ctrl+K", tip="Copy a region of a tensor in another checkpoint (or this one) into the "
                          "selection (Ctrl+K)"),
        copy=_action(w, "&Copy Cells", "copyAction", w.editor.copy_selection, None),
        paste=_action(w, "&Paste Cells", "pasteAction", w.editor.paste, None),
        go_to=_action(w, "&Go to Cell or Region…", "goToAction", w.editor.go_to_region, "Ctrl+G",
                      tip="Type a cell or region, e.g. [3, 7] or [:, 128:192]; several separated by ';' (Ctrl+G)"),
        backward=_action(w, "Run &Backward Check", "backwardAction", w.run_backward, "F5", sp.SP_MediaPlay,
                         "Run one forward and backward pass and show which parameters receive gradients (F5)"),
        backward_input=_action(w, "Backward Check With &Input…", "backwardInputAction",
                               lambda: w.run_backward(ask=True), "Shift+F5",
                               tip="Give the model's forward inputs, then run the backward check (Shift+F5)"),
        backward_edited=_action(w, "Backward Check of &Edited Parameters", "backwardEditedAction",
                                lambda: w.run_backward(edited_only=True), "Ctrl+F5",
                                tip="Check only the parameters that differ from the checkpoint (the others are "
                                "frozen for the check): what a large model's full check does when it would not "
                                "fit in memory"),
        scan=_action(w, "&Scan for NaN, Inf and Outliers", "scanAction", lambda: w.analysis.scan(), "Ctrl+Shift+H",
                     sp.SP_FileDialogContentsView, "Read every value of every tensor once and list each NaN, Inf, "
                     "outlier, all-zero row or column and constant tensor, with where it is (Ctrl+Shift+H)"),
        compare=_action(w, "Compare &With…", "compareAction", lambda: w.analysis.ask_and_compare(), "Ctrl+Shift+D",
                        sp.SP_FileDialogDetailedView, "Compare the model (B) with a reference checkpoint (A): "
                        "what changed, where and by how much (Ctrl+Shift+D)"),
        compare_opened=_action(w, "Compare With the Checkpoint as &Opened", "compareOpenedAction",
                               lambda: w.analysis.compare_with_opened(),
                               tip="What did my edits do: compare the model with the checkpoint it was opened from"),
        compare_again=_action(w, "Compare &Again", "compareAgainAction", lambda: w.analysis.compare_again(),
                              tip="Run the same comparison on the model as it is now"),
        clear_compare=_action(w, "C&lear Comparison", "clearCompareAction", lambda: w.analysis.clear_comparison(),
                              tip="Stop comparing: hide the change columns and the difference view"),
        show_report=_action(w, "Show &Load Report", "showReportAction", w.show_load_report),
        about=_action(w, "&About paramedit", "aboutAction", w.about),
        zoom_in=_action(w, "Zoom &In", "zoomInAction", lambda: w.zoom.zoom_in(), "Ctrl+=",
                        tip="Larger text in the tree, table, heatmap and outputs (Ctrl+=)"),
        zoom_out=_action(w, "Zoom &Out", "zoomOutAction", lambda: w.zoom.zoom_out(), "Ctrl+-",
                         tip="Smaller text in the tree, table, heatmap and outputs (Ctrl+-)"),
        zoom_reset=_action(w, "&Actual Size", "zoomResetAction", lambda: w.zoom.reset(), "Ctrl+0"),
        present=_action(w, "&Presentation Layout", "presentAction", lambda: w.presentation.toggle(), "F11",
                        tip="A layout for a projector: the heatmap and the outputs take the space, the toolbar "
                        "keeps what a demonstration needs (F11)"),
        recent_menu=QMenu("Open &Recent", w),
        device_combo=combo,
    )
    actions.zoom_in.setShortcuts([QKeySequence("Ctrl+="), QKeySequence("Ctrl++")])
    actions.present.setCheckable(True)
    # The shortcuts work whichever toolbar or menu is shown (a hidden toolbar's actions do not fire).
    w.addActions([actions.zoom_in, actions.zoom_out, actions.zoom_reset, actions.present])
    return actions


def build_menus(w: MainWindow, a: WindowActions) -> None:
    bar = w.menuBar()
    file = bar.addMenu("&File")
    file.addActions([a.open_model, a.open_checkpoint, a.open_checkpoint_folder, a.open_demo])
    file.addMenu(a.recent_menu)
    file.addSeparator()
    file.addActions([a.save, a.save_as, a.export_edits])
    file.addSeparator()
    file.addAction(a.quit)

    edit = bar.addMenu("&Edit")
    edit.addActions([a.undo, a.redo])
    edit.addSeparator()
    edit.addActions([a.commit, a.discard])
    edit.addSeparator()
    edit.addActions([a.fill, a.formula, a.init, a.copy_from])
    edit.addSeparator()
    # Ctrl+C / Ctrl+V are handled by the table itself, so the menu entries show them without owning them.
    a.copy.setText("&Copy Cells\tCtrl+C")
    a.paste.setText("&Paste Cells\tCtrl+V")
    edit.addActions([a.copy, a.paste])
    edit.addSeparator()
    edit.addAction(a.go_to)

    model = bar.addMenu("&Model")
    model.addActions([a.backward, a.backward_input, a.backward_edited])
    device = model.addMenu("&Device")
    for i in range(a.device_combo.count()):
        name = a.device_combo.itemData(i)
        device.addAction(a.device_combo.itemText(i), lambda n=name: w.set_device(n))
    model.addSeparator()
    model.addAction(a.show_report)

    analyze = bar.addMenu("&Analyze")
    analyze.addAction(a.scan)
    analyze.addSeparator()
    analyze.addActions([a.compare, a.compare_opened, a.compare_again, a.clear_compare])

    view = bar.addMenu("&View")
    view.addAction(w.editor.gradient_action)
    view.addAction(w.editor.difference_action)
    view.addAction(w.editor.reference_action)
    view.addAction(w.editor.colour_action)
    view.addAction(w.editor.edited_action)
    number = view.addMenu("&Number Format")
    number.addActions(list(w.editor.format_actions.values()))
    view.addSeparator()
    view.addActions([a.zoom_in, a.zoom_out, a.zoom_reset])
    view.addSeparator()
    view.addAction(a.present)

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(a.about)


def build_toolbar(w: MainWindow, a: WindowActions) -> QToolBar:
    bar = QToolBar("Main", w)
    bar.setObjectName("mainToolBar")
    bar.setMovable(False)
    bar.setIconSize(QSize(18, 18))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    a.open_model.setIconText("Open")
    a.discard.setIconText("Discard")
    a.undo.setIconText("Undo")
    a.redo.setIconText("Redo")
    a.backward.setIconText("Backward check")
    a.scan.setIconText("Scan")
    a.compare.setIconText("Compare")
    bar.addActions([a.open_model, a.save])
    bar.addSeparator()
    bar.addActions([a.commit, a.discard, a.undo, a.redo])
    bar.addSeparator()
    bar.addActions([a.backward, a.scan, a.compare])
    spacer = QWidget()
    spacer.setSizePolicy(spacer.sizePolicy().Policy.Expanding, spacer.sizePolicy().Policy.Preferred)
    bar.addWidget(spacer)
    label = QLabel("Device: ")
    bar.addWidget(label)
    bar.addWidget(a.device_combo)
    return bar


def build_present_toolbar(w: MainWindow, a: WindowActions) -> QToolBar:
    """The presentation layout's toolbar: only what a live demonstration uses."""
    bar = QToolBar("Presentation", w)
    bar.setObjectName("presentToolBar")
    bar.setMovable(False)
    bar.setIconSize(QSize(18, 18))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    a.fill.setIconText("Fill")
    a.zoom_out.setIconText("A−")
    a.zoom_in.setIconText("A+")
    a.present.setIconText("Exit presentation")
    bar.addActions([a.fill, a.commit, a.undo, a.redo])
    bar.addSeparator()
    bar.addActions([a.zoom_out, a.zoom_in])
    spacer = QWidget()
    spacer.setSizePolicy(spacer.sizePolicy().Policy.Expanding, spacer.sizePolicy().Policy.Preferred)
    bar.addWidget(spacer)
    bar.addAction(a.present)
    bar.setVisible(False)
    return bar
