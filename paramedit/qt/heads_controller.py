""""Split into heads": a projection shown as q/k/v × head × head_dim, a head picked by name.

The layout comes from core (:meth:`Session.head_layout`: the model's config or attention module,
else a count the user types). Picking one part's head windows the table (and the heatmap, which
shows what the table shows) to that head's block along the head dimension, numbered from 0 with
the tensor's index in the header's tooltip; picking a head of all parts selects its block in
each of q, k and v. Either way the head's regions become the selection, so Fill, Formula, Init
and Paste write exactly those blocks of the tensor itself, in place.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from paramedit.core.errors import ParameditError
from paramedit.core.model.heads import HeadLayout
from paramedit.qt import prompts
from paramedit.qt.heads_bar_widget import HeadsBarWidget
from paramedit.qt.region_selection_controller import RegionSelectionController
from paramedit.qt.tensor_table_model import TensorTableModel


class HeadsController(QObject):
    """Keeps the heads bar, the table's window and the selection on one head."""

    viewChanged = Signal()  # the table shows another window: redraw the heatmap and the header
    statusMessage = Signal(str)

    def __init__(self, model: TensorTableModel, selection: RegionSelectionController, bar: HeadsBarWidget,
                 dialog_parent: QWidget) -> None:
        super().__init__(dialog_parent)
        self.model, self.selection, self.bar = model, selection, bar
        self._parent = dialog_parent
        self._layout: HeadLayout | None = None
        bar.setVisible(False)
        bar.headChosen.connect(self.show_head)
        bar.closed.connect(self.close)

    @property
    def layout(self) -> HeadLayout | None:
        """The head layout shown (None: the whole tensor)."""
        return self._layout

    def split(self, heads: int | None = None, parts: int = 1) -> bool:
        """Split the shown tensor into heads (asking for the count when the model cannot tell)."""
        session, name = self.model.session, self.model.name
        if session is None or not name:
            self.statusMessage.emit("select a tensor first")
            return False
        try:
            layout = session.head_layout(name, heads=heads, parts=parts)
        except ParameditError as exc:
            if heads is not None:
                self.statusMessage.emit(f"cannot split {name} into heads: {exc.message}")
                return False
            layout = self._ask_count(name, exc.message)
            if layout is None:
                return False
        if layout.dim not in (self.model.row_dim, self.model.col_dim):
            self.statusMessage.emit(f"{name}'s head dimension {layout.dim} is not shown in the table: show it as rows "
                                    "or columns first")
            return False
        self._layout = layout
        self.bar.set_layout(layout)
        self.bar.setVisible(True)
        self.show_head()
        self.statusMessage.emit(f"{name} split into heads: {self.bar.layout_label.text()}")
        return True

    def _ask_count(self, name: str, reason: str) -> HeadLayout | None:
        """Ask for the head count until one fits the tensor (the question says why the last did
        not), or the user cancels."""
        session = self.model.session
        assert session is not None
        while True:
            text = prompts.ask_head_count(self._parent, name, reason)
            if text is None:
                return None
            heads, _, parts = text.strip().lower().replace("×", "x").partition("x")
            try:
                return session.head_layout(name, heads=int(heads), parts=int(parts or 1))
            except ValueError:
                reason = f"{text.strip()!r} is not a number of heads: type 12, or 12x3 for a fused q/k/v"
            except ParameditError as exc:
                reason = exc.message

    def choose(self, head: int, part: str | None = None) -> None:
        """Show and select head ``head`` (of ``part``; None: of every part)."""
        self.bar.choose(head, part)
        self.show_head()

    def show_head(self) -> None:
        layout = self._layout
        if layout is None:
            return
        head, part = self.bar.head, self.bar.part
        try:
            regions = layout.regions(head, part)
        except ParameditError as exc:
            self.statusMessage.emit(exc.message)
            return
        window = layout.span(head, part) if part is not None else None
        rows = window if layout.dim == self.model.row_dim else None
        cols = window if layout.dim == self.model.col_dim else None
        if self.model.windows != (rows, cols):
            self.model.set_windows(rows, cols)
            self.viewChanged.emit()
        which = (f"{layout.part_label(part)} {head}" if part is not None
                 else f"head {head} of {', '.join(layout.parts)}")
        self.selection.select_text("; ".join(regions), note=which)

    def describe(self) -> str:
        """The header's words for the window shown ("" for the whole tensor)."""
        layout, (rows, cols) = self._layout, self.model.windows
        window = rows or cols
        if layout is None or window is None:
            return ""
        return f"{layout.part_label(self.bar.part)} {self.bar.head}: {window[0]}:{window[1]} of dim {layout.dim}"

    def slice_changed(self) -> None:
        """The table shows another slice (its window was reset): pick the head again, or close."""
        if self._layout is None:
            return
        if self._layout.dim in (self.model.row_dim, self.model.col_dim):
            self.show_head()
        else:
            self.close()

    def close(self) -> None:
        """The whole tensor again."""
        was_split = self._layout is not None
        self._layout = None
        self.bar.setVisible(False)
        if self.model.windows != (None, None):
            self.model.set_windows(None, None)
            self.viewChanged.emit()
        if was_split:
            self.selection.clear()

    def tensor_changed(self) -> None:
        """Another tensor: not split (the model dropped its window already)."""
        self._layout = None
        self.bar.setVisible(False)
