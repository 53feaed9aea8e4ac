"""What the heatmap shows for the table's slice, fetched from core: the values (B), the
gradient, the difference from a reference checkpoint (B − A) or the reference's values (A), with
the scan's findings of the slice marked over whichever it is.

Reads cost the screen, not the tensor: a strided sample about the plot's size unless the
heatmap's reduction asks for every value, and A's values are read through A's file, only the
sampled region of it (:meth:`CompareReport.reference_values`).
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QObject, Signal

from paramedit.core.analysis.checkpoint_compare import CompareReport
from paramedit.core.analysis.health_scan import ScanReport
from paramedit.core.errors import ParameditError
from paramedit.qt.finding_locations import marks_in_slice
from paramedit.qt.heatmap_data import difference, sampling_steps
from paramedit.qt.heatmap_view import HeatmapView
from paramedit.qt.tensor_table_model import TensorTableModel


class HeatmapSource(Enum):
    """What the heatmap draws."""

    VALUES = "values"
    GRADIENT = "gradient"
    DIFFERENCE = "B − A"
    REFERENCE = "A (reference)"


class HeatmapFeeder(QObject):
    """Feeds a :class:`HeatmapView` the slice a :class:`TensorTableModel` shows."""

    statusMessage = Signal(str)

    def __init__(self, model: TensorTableModel, heatmap: HeatmapView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.heatmap = model, heatmap
        self.source = HeatmapSource.VALUES
        self.scan: ScanReport | None = None
        self.comparison: CompareReport | None = None
        self.focus: tuple[str, int | None, int | None] | None = None  # tensor, table row, column

    def refresh(self) -> None:
        """Fetch and draw the shown slice as :attr:`source` says."""
        session, name = self.model.session, self.model.name
        if session is None or not name:
            self.heatmap.clear()
            return
        region = self.model.region_text()
        title = name if region == "[...]" else f"{name}{region}"
        shape = (self.model.rowCount(), self.model.columnCount())
        # Unless the reduction reads every value: a strided sample about the plot's size in
        # pixels (a 50257 x 768 embedding is read as every 126th row and 2nd column).
        steps = (1, 1) if self.heatmap.reads_every_value() else sampling_steps(shape, self.heatmap.sampling_limits())
        self.heatmap.set_mode_label(self.source.value)
        try:
            shown = self._fetch(name, steps, title, shape)
        except ParameditError as exc:
            self.statusMessage.emit(exc.message)
            return
        if shown:
            self._mark(name)

    def _fetch(self, name: str, steps: tuple[int, int], title: str, shape: tuple[int, int]) -> bool:
        session = self.model.session
        assert session is not None
        kwargs = {"title": title, "stride": steps, "full_shape": shape}
        if self.source is HeatmapSource.GRADIENT:
            grad = session.tensor(name).grad
            if grad is None:
                why = "it is frozen" if not session.tensor(name).requires_grad else "none reached it"
                self.heatmap.clear(f"{name} has no gradient from the last backward check ({why})")
                self.statusMessage.emit(f"{name} has no gradient from the last backward check")
                return False
            sample = grad.detach()[self.model.slice_index(steps=steps)].to("cpu", copy=True)
            self.heatmap.set_values(self.model.to_table_layout(sample), **kwargs)
            return True
        values, _mask = session.preview(name, self.model.region_text(steps=steps))
        b = self.model.to_table_layout(values)
        a = self.model.reference_block(steps=steps) if self.comparison is not None else None
        if self.source in (HeatmapSource.DIFFERENCE, HeatmapSource.REFERENCE) and a is None:
            self.heatmap.clear(f"{name} has no tensor of its shape in the reference checkpoint: nothing to "
                               "compare it with")
            return False
        if self.source is HeatmapSource.DIFFERENCE:
            assert self.comparison is not None and a is not None
            scale = self.comparison.scale() or 1.0  # one symmetric scale for every tensor of the comparison
            self.heatmap.set_values(difference(b, a), levels=(-scale, scale), **kwargs)
        elif self.source is HeatmapSource.REFERENCE:
            self.heatmap.set_values(a, scale_with=b, **kwargs)
        else:
            self.heatmap.set_values(b, scale_with=a, **kwargs)
        return True

    def remark(self) -> None:
        """Mark the scan's findings on the slice already drawn (no values are read again)."""
        if self.model.session is not None and self.model.name:
            self._mark(self.model.name)

    def _mark(self, name: str) -> None:
        findings = self.scan.for_tensor(name) if self.scan is not None else []
        ndim = len(self.model.info.shape) if self.model.info is not None else 0
        self.heatmap.set_marks(marks_in_slice(findings, ndim, self.model.row_dim, self.model.col_dim,
                                              self.model.fixed))
        focus = self.focus
        self.heatmap.set_focus(*(focus[1:] if focus is not None and focus[0] == name else (None, None)))

    def reference_available(self, name: str) -> bool:
        return self.comparison is not None and self.comparison.reference_tensor(name) is not None


