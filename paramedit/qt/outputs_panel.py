"""The ``outputsPanel``: what the model outputs before and after the last change.

It shows the :class:`ProbeController`'s state (class bars side by side, changed top-1
predictions highlighted, the change figures) and passes on what the user chooses: the input
(expressions, an image file, a prompt for a model with a tokenizer), the baseline, Pin and Run.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel
from superqt.utils import signals_blocked

from paramedit.core.errors import ParameditError
from paramedit.core.model.probe import ProbeResult
from paramedit.core.session import Session
from paramedit.qt import prompts
from paramedit.qt.backward_input_controller import BackwardInputController
from paramedit.qt.image_input import ImageSlot, image_slot, read_image, with_image
from paramedit.qt.outputs_state import Baseline, OutputsState
from paramedit.qt.probe_bar_delegate import ProbeBarDelegate
from paramedit.qt.probe_controller import ProbeController
from paramedit.qt.probe_table_model import ProbeTableModel, entry_label
from paramedit.qt.settings import last_folder, remember_folder

#: Samples up to this many are shown with all their ranks where they fit; else top-1 only (expandable).
EXPAND_SAMPLES = 8
THUMBNAIL_PX = 48
SUMMARY_SAMPLES = 16  # up to this many samples, the top-1 predictions are also listed on one line
ERROR_STYLE = "color: #b3261e; font-weight: 600;"
MUTED_STYLE = "color: palette(placeholder-text);"


class OutputsPanel(QWidget):
    """Input row, comparison row, the change figures and the before/after table."""

    def __init__(self, probes: ProbeController, inputs: BackwardInputController, model_key: Callable[[], str],
                 settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outputsPanel")
        self._probes, self._inputs, self._model_key, self._settings = probes, inputs, model_key, settings
        self._session: Session | None = None
        self._picture: QImage | None = None
        self.state = OutputsState()

        self.input_label = QElidingLabel("", objectName="outputsInput")
        self.input_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.thumbnail = QLabel(objectName="outputsImage", visible=False)
        self.input_button = _button("Input…", "outputsInputButton")
        self.input_button.setToolTip("Run the model on other inputs: expressions such as randn(4, 784)")
        self.image_button = _button("Image…", "outputsImageButton")
        self.image_button.setToolTip("Run the model on an image file, converted to its input's channels and size")
        self.prompt_edit = QLineEdit(objectName="promptEdit", placeholderText="Prompt, then Enter")
        self.prompt_edit.setToolTip("A text for the model: the next-token list and a greedy continuation")
        self.generate_spin = QSpinBox(objectName="generateSpin", minimum=0, maximum=64, value=probes.generate)
        self.generate_spin.setPrefix("+")
        self.generate_spin.setSuffix(" tokens")
        self.generate_spin.setToolTip("Tokens of greedy continuation after the prompt (each costs a forward pass)")
        self.baseline_combo = QComboBox(objectName="baselineCombo")
        for baseline in Baseline:
            self.baseline_combo.addItem(f"vs. {baseline.value}", baseline)
        self.baseline_combo.setToolTip("What the outputs are compared with. The checkpoint as opened, or a pinned "
                                       "state, stays the reference across commits: Undo and Redo then flip A and B.")
        self.pin_button = _button("Pin", "pinButton")
        self.pin_button.setToolTip("Compare with the model as it is now from here on (Undo/Redo become an A/B toggle)")
        self.auto_check = QCheckBox("Auto", objectName="autoCheck")
        self.auto_check.setToolTip("Run the model again after each commit, undo and redo")
        self.run_button = _button("Run", "probeRunButton")
        self.run_button.setToolTip("Run the model now and show its outputs")
        self.message_label = QLabel("", objectName="outputsMessage", wordWrap=True)
        self.note_label = QLabel("", objectName="outputsNote", wordWrap=True, styleSheet=MUTED_STYLE)
        self.change_label = QLabel("", objectName="outputsChange", wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.generated_label = QLabel("", objectName="outputsGenerated", wordWrap=True)
        self.generated_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label in (self.message_label, self.note_label, self.change_label, self.generated_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.model = ProbeTableModel(self)
        self.view = QTreeView(objectName="outputsView")
        self.view.setModel(self.model)
        self.view.setItemDelegate(ProbeBarDelegate(self.view))
        self.view.setUniformRowHeights(True)
        self.view.setRootIsDecorated(True)
        self.view.setIndentation(12)
        self.view.setMinimumHeight(40)  # a short bottom pane keeps its rows; the table scrolls
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self._build_layout()
        self._connect()

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.setSpacing(4)
        top.addWidget(self.thumbnail)
        top.addWidget(self.input_label, 1)
        top.addWidget(self.input_button)
        top.addWidget(self.image_button)
        prompt = QHBoxLayout()
        prompt.setSpacing(4)
        prompt.addWidget(self.prompt_edit, 1)
        prompt.addWidget(self.generate_spin)
        compare = QHBoxLayout()
        compare.setSpacing(4)
        compare.addWidget(self.baseline_combo, 1)
        compare.addWidget(self.pin_button)
        compare.addWidget(self.auto_check)
        compare.addWidget(self.run_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.setSpacing(3)
        column.addLayout(top)
        column.addLayout(prompt)
        column.addLayout(compare)
        column.addWidget(self.change_label)
        column.addWidget(self.message_label)
        column.addWidget(self.note_label)
        column.addWidget(self.view, 1)
        column.addWidget(self.generated_label)
        self.baseline_combo.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.baseline_combo.setMinimumWidth(60)

    def _connect(self) -> None:
        p = self._probes
        p.stateChanged.connect(self.show_state)
        self.run_button.clicked.connect(p.run_now)
        self.pin_button.clicked.connect(p.pin)
        self.auto_check.toggled.connect(p.set_auto)
        self.baseline_combo.activated.connect(self._baseline_chosen)
        self.prompt_edit.returnPressed.connect(self._prompt_entered)
        self.generate_spin.valueChanged.connect(p.set_generate)
        self.input_button.clicked.connect(self.choose_input)
        self.image_button.clicked.connect(self.choose_image)

    # ------------------------------------------------------------------ the session
    def set_session(self, session: Session | None) -> None:
        self._session, self._picture = session, None
        with signals_blocked(self.prompt_edit):
            self.prompt_edit.clear()

    # ------------------------------------------------------------------ what the user chooses
    def _baseline_chosen(self, index: int) -> None:
        baseline = self.baseline_combo.itemData(index)
        if baseline is Baseline.PINNED and self.state.baseline is not Baseline.PINNED:
            if not self._probes.pin():  # choosing "the pinned state" pins the state as it is now
                self.show_state(self._probes.state())
            return
        self._probes.set_baseline(baseline)

    def _prompt_entered(self) -> None:
        self._picture = None
        self._probes.set_prompt(self.prompt_edit.text())

    def choose_input(self) -> bool:
        """Ask for input expressions (pre-filled as the backward check's dialog is) and run on them."""
        s = self._session
        if s is None or s.model is None:
            return False
        key = self._model_key()
        text, source = self._inputs.prefill(s, key)
        exprs = prompts.ask_input_expressions(self, text, source)
        if not exprs:
            return False
        self._picture = None
        self._probes.set_input_exprs(exprs)
        self._inputs.worked(key, exprs)
        return True

    def choose_image(self) -> bool:
        """Ask for an image file and run the model on it (its input must be N×C×H×W)."""
        if self._image_slot() is None:
            return False
        path = prompts.ask_image_file(self, last_folder(self._settings))
        return bool(path) and self.use_image(path)

    def use_image(self, path: str) -> bool:
        """Run the model on the image at ``path``, converted to its input's channels, size and range."""
        used, slot = self._probes.used_inputs, self._image_slot()
        if slot is None:
            return False
        try:
            tensor, picture = read_image(path, slot)
        except ParameditError as exc:
            self._show_message(exc.message, error=True)
            return False
        remember_folder(path, self._settings)
        self._picture = picture
        self._probes.set_inputs(with_image(used, slot, tensor), f"image {Path(path).name} → {slot.describe()}")
        return True

    def _image_slot(self) -> ImageSlot | None:
        used = self._probes.used_inputs
        slot = image_slot(used) if used is not None else None
        if slot is None:
            self._show_message("The model's input is not an image (N×C×H×W): run it once on its own input first.",
                               error=True)
        return slot

    # ------------------------------------------------------------------ showing
    def show_state(self, state: OutputsState) -> None:
        self.state = state
        self.input_label.setText(f"Input: {state.input_text}" if state.input_text else "")
        self.input_label.setToolTip(state.input_text)
        has_model = self._session is not None and self._session.model is not None
        self.input_button.setEnabled(has_model)
        self.image_button.setEnabled(has_model and state.image_ok)
        for widget in (self.prompt_edit, self.generate_spin):
            widget.setVisible(state.has_tokenizer)
        self._show_picture()
        with signals_blocked(self.baseline_combo):
            self.baseline_combo.setCurrentIndex(self.baseline_combo.findData(state.baseline))
        with signals_blocked(self.auto_check):
            self.auto_check.setChecked(state.auto)
        self.pin_button.setEnabled(state.can_pin)
        self.run_button.setEnabled(has_model and not state.running)
        self.run_button.setVisible(has_model and (not state.auto or state.error or state.after is None))
        self._show_message(state.message, error=state.error)
        self.note_label.setText(state.note)
        self.note_label.setVisible(bool(state.note))
        self.change_label.setText(_change_html(state))
        self.change_label.setVisible(bool(self.change_label.text()))
        self.model.set_results(state.before, state.after)
        self.view.setColumnHidden(1, state.before is None)
        self._expand()
        self.generated_label.setText(_generated_html(state))
        self.generated_label.setVisible(bool(self.generated_label.text()))

    def _expand(self) -> None:
        """Every rank when they fit (or there is one sample: a token list), else each sample's top-1."""
        samples = self.model.samples()
        rows = samples + sum(self.model.rowCount(self.model.index(i, 0)) for i in range(samples))
        fits = rows * max(1, self.view.sizeHintForRow(0)) <= self.view.viewport().height()
        if samples == 1 or (samples <= EXPAND_SAMPLES and fits):
            self.view.expandAll()
        else:
            self.view.collapseAll()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().height() != event.oldSize().height():
            self._expand()

    def _show_message(self, text: str, *, error: bool) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet(ERROR_STYLE if error else MUTED_STYLE)
        self.message_label.setVisible(bool(text))

    def _show_picture(self) -> None:
        if self._picture is None or self.state.prompt is not None:
            self.thumbnail.setVisible(False)
            return
        scale = max(1, THUMBNAIL_PX // max(1, self._picture.height()))
        mode = Qt.TransformationMode.FastTransformation if scale > 1 else Qt.TransformationMode.SmoothTransformation
        pixmap = QPixmap.fromImage(self._picture).scaledToHeight(max(THUMBNAIL_PX, self._picture.height() * scale)
                                                                 if scale > 1 else THUMBNAIL_PX, mode)
        self.thumbnail.setPixmap(pixmap)
        self.thumbnail.setVisible(True)


def _button(text: str, name: str) -> QToolButton:
    """A button no wider than its text (a push button's minimum width crowds a narrow panel)."""
    button = QToolButton(objectName=name, text=text)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


def _change_html(state: OutputsState) -> str:
    change, before, after = state.change, state.before, state.after
    if change is None:
        return ""
    text = escape(change.describe())
    if change.top1_changed:
        text = f"<span style='color:#9a4a00; font-weight:600'>{text}</span>"
    if before is not None and after is not None and after.classes and len(after.top_k) <= SUMMARY_SAMPLES:
        def top1(result: ProbeResult) -> str:
            return ", ".join(entry_label(row[0]) for row in result.top_k)

        text += f"<br>top-1: [{escape(top1(before))}] → [{escape(top1(after))}]"
    return text


def _generated_html(state: OutputsState) -> str:
    lines = []
    for name, result in (("before", state.before), ("after", state.after)):
        if result is not None and result.generated:
            lines.append(f"<b>{name}</b> continues: {escape(' | '.join(result.generated))}")
    return "<br>".join(lines)
