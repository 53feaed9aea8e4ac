"""Fill / Formula / Init / Copy of the selected cells: one dialog with a tab for each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from paramedit.core.editing.initializers import INIT_METHODS, init_arguments
from paramedit.core.editing.values import check_scalar, parse_number
from paramedit.core.errors import ParameditError, ValueValidationError
from paramedit.qt.formula_templates import formula_templates
from paramedit.qt.open_model_dialog import CHECKPOINT_FILTER

MODES = ("fill", "formula", "init", "copy")


@dataclass(frozen=True)
class SelectionEdit:
    """What to stage over the selection: ``fill`` (value), ``formula`` (expr), ``init`` (method)
    or ``copy`` (``source_index`` of ``source_name`` in the checkpoint ``source``; None: the
    session's own)."""

    op: str
    value: Any = None
    expr: str | None = None
    method: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str | None = None
    source_name: str | None = None
    source_index: str = "[...]"


def _parse_arg(text: str) -> Any:
    try:
        return parse_number(text)
    except ValueValidationError:
        return text.strip()  # string arguments such as mode="fan_out"


def _form_tab(rows: list[tuple[str, QWidget | QLayout]], hint: str) -> QWidget:
    """A tab of labelled fields above a wrapped hint."""
    tab = QWidget()
    form = QFormLayout(tab)
    for label, field_ in rows:
        form.addRow(label, field_)
    text = QLabel(hint)
    text.setWordWrap(True)
    form.addRow(text)
    return tab


class SelectionEditDialog(QDialog):
    """Asks for a fill value, a formula over ``x``, an initialiser or a source region; ``apply`` stages it.

    The dialog stays open with core's message when ``apply`` raises, so a typo in a formula
    can be fixed in place.
    """

    def __init__(self, parent: QWidget | None, region: str, dtype: torch.dtype,
                 apply: Callable[[SelectionEdit], None], mode: str = "fill", *, tensor_name: str = "",
                 folder: str = "", shape: Sequence[int] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("selectionEditDialog")
        self.setWindowTitle("Edit selection")
        self.setMinimumWidth(460)
        self._dtype = dtype
        self._apply = apply

        self.tabs = QTabWidget(self)
        self.value_edit = QLineEdit("0", objectName="fillValue")
        fill = QWidget()
        form = QFormLayout(fill)
        form.addRow("Value:", self.value_edit)
        form.addRow(QLabel(f"Every selected cell gets this value ({str(dtype).removeprefix('torch.')})."))
        self.tabs.addTab(fill, "Fill")

        self.expr_edit = QLineEdit("x", objectName="formulaExpr")
        self.expr_seed = QSpinBox(objectName="formulaSeed", maximum=2**31 - 1)
        self.templates = formula_templates(tuple(shape) if shape is not None else (1,))
        self.template_combo = QComboBox(objectName="formulaTemplates")
        self.template_combo.addItem("Start from a template…")
        for template in self.templates:
            self.template_combo.addItem(template.title)
            self.template_combo.setItemData(self.template_combo.count() - 1, template.explanation,
                                            Qt.ItemDataRole.ToolTipRole)
        self.template_help = QLabel("", objectName="formulaTemplateHelp", wordWrap=True)
        self.template_help.setStyleSheet("color: palette(placeholder-text);")
        self.template_combo.currentIndexChanged.connect(self._template_chosen)
        formula = _form_tab([("Formula:", self.expr_edit), ("Template:", self.template_combo),
                             ("", self.template_help), ("Seed:", self.expr_seed)],
                            "<i>x</i> is the selection's current values (of each selected region). Examples: "
                            "<code>x * 0.5</code>, <code>clamp(x, -1, 1)</code>, "
                            "<code>where(abs(x) &lt; 0.01, 0, x)</code>, <code>randn_like(x) * 0.02</code>, "
                            "<code>arange(16)</code>.")
        self.tabs.addTab(formula, "Formula")

        self.method_combo = QComboBox(objectName="initMethod")
        self.method_combo.addItems(list(INIT_METHODS))
        self.init_seed = QSpinBox(objectName="initSeed", maximum=2**31 - 1)
        self._arg_edits: dict[str, QLineEdit] = {}
        init = QWidget()
        self._init_form = QFormLayout(init)
        self._init_form.addRow("Method:", self.method_combo)
        self._init_form.addRow("Seed:", self.init_seed)
        self.tabs.addTab(init, "Init")
        self.method_combo.currentTextChanged.connect(self._method_changed)
        self._method_changed(self.method_combo.currentText())
        self.tabs.addTab(self._copy_tab(tensor_name, folder), "Copy")

        self.error_label = QLabel("", objectName="selectionEditError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b3261e;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Stage")
        buttons.accepted.connect(self._stage)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        where = QLabel(f"Region: <b>{escape(region)}</b>", objectName="selectionEditRegion", wordWrap=True)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(where)  # several regions wrap rather than run out of the dialog
        layout.addWidget(self.tabs)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.tabs.currentChanged.connect(self._focus_tab)
        self.tabs.setCurrentIndex(MODES.index(mode) if mode in MODES else 0)
        self._focus_tab(self.tabs.currentIndex())

    def _focus_tab(self, index: int) -> None:
        """Typing goes into the tab's first field, its text selected: Ctrl+F, 0.5, Enter fills 0.5."""
        edit = {0: self.value_edit, 1: self.expr_edit}.get(index)
        if edit is not None:
            edit.setFocus(Qt.FocusReason.OtherFocusReason)
            edit.selectAll()

    def _copy_tab(self, tensor_name: str, folder: str) -> QWidget:
        """Values from a region of a tensor in another checkpoint (or the session's own)."""
        self._folder = folder
        self.source_edit = QLineEdit(objectName="copySource")
        self.source_edit.setPlaceholderText("(this session's checkpoint)")
        browse = QPushButton("Browse…", objectName="copyBrowse")
        browse.clicked.connect(self._browse_source)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.source_edit, 1)
        row.addWidget(browse)
        self.source_name_edit = QLineEdit(tensor_name, objectName="copySourceName")
        self.source_index_edit = QLineEdit("[...]", objectName="copySourceIndex")
        return _form_tab([("Checkpoint:", row), ("Tensor:", self.source_name_edit),
                          ("Source region:", self.source_index_edit)],
                         "The source region must have the selection's shape. To move the first three rows "
                         "of a pre-trained 5×10 weight into a new 3×10 one, select the whole new weight and "
                         "copy region <code>[:3, :]</code>.")

    def _browse_source(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Copy from checkpoint", self._folder, CHECKPOINT_FILTER)
        if path:
            self.source_edit.setText(path)

    def _template_chosen(self, index: int) -> None:
        if index <= 0:
            self.template_help.clear()
            return
        template = self.templates[index - 1]
        self.expr_edit.setText(template.expr)
        self.template_help.setText(template.explanation)

    def _method_changed(self, method: str) -> None:
        for edit in self._arg_edits.values():
            self._init_form.removeRow(edit)
        self._arg_edits = {}
        for name, default in init_arguments(method).items():
            edit = QLineEdit(str(default))
            self._arg_edits[name] = edit
            self._init_form.addRow(f"{name}:", edit)

    def selection_edit(self) -> SelectionEdit:
        """The edit the current tab describes; raises ParameditError for a bad fill value."""
        mode = MODES[self.tabs.currentIndex()]
        if mode == "fill":
            return SelectionEdit("fill", value=check_scalar(parse_number(self.value_edit.text()), self._dtype))
        if mode == "formula":
            return SelectionEdit("formula", expr=self.expr_edit.text(), seed=self.expr_seed.value())
        if mode == "copy":
            return SelectionEdit("copy", source=self.source_edit.text().strip() or None,
                                 source_name=self.source_name_edit.text().strip() or None,
                                 source_index=self.source_index_edit.text().strip() or "[...]")
        args = {name: _parse_arg(edit.text()) for name, edit in self._arg_edits.items()}
        return SelectionEdit("init", method=self.method_combo.currentText(), args=args, seed=self.init_seed.value())

    def _stage(self) -> None:
        try:
            self._apply(self.selection_edit())
        except ParameditError as exc:
            self.error_label.setText(exc.message)
            return
        self.accept()
