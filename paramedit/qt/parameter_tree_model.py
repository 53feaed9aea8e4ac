"""A thin Qt tree model over ``session.infos()``: modules nested by path, one row per tensor.

Besides shape, dtype, device and kind it shows what whole-model jobs found: a marker on every
tensor with a scan finding of severity error or warning (its tooltip lists them), and, while a
comparison is on, how much each tensor changed (max |Δ|, relative change, changed cells; a
module shows the largest max |Δ| and the sum of changed cells below it), sortable through
:data:`SORT_ROLE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from paramedit.core.analysis.checkpoint_compare import CompareReport, TensorDiff
from paramedit.core.analysis.health_scan import Finding, ScanReport
from paramedit.core.model.backward_check import BackwardReport
from paramedit.core.session import Session
from paramedit.core.tensor_tree import TensorInfo
from paramedit.qt.finding_icons import severity_icon, worst_severity
from paramedit.qt.grad_status import MEANINGS, GradStatus, status_icon, statuses

COLUMNS = ("Name", "Shape", "DType", "Device", "Kind", "max |Δ|", "rel. change", "changed")
COMPARE_COLUMNS = (5, 6, 7)  # shown only while a comparison is on
NAME_ROLE = Qt.ItemDataRole.UserRole + 1  # full tensor name, None for module rows
GRAD_STATUS_ROLE = Qt.ItemDataRole.UserRole + 2  # GradStatus or None
MARKER_ROLE = Qt.ItemDataRole.UserRole + 3  # "staged", "edited" or ""
FINDINGS_ROLE = Qt.ItemDataRole.UserRole + 4  # "error" or "warning" (the worst scan finding), or None
SORT_ROLE = Qt.ItemDataRole.UserRole + 5  # numbers for the change columns, text for the others
DIFF_STATUS_TEXT = {"only_a": "only in A", "only_b": "not in A", "shape": "other shape"}

STAGED_BRUSH = QBrush(QColor("#fff1c2"))
EDITED_BRUSH = QBrush(QColor("#dff3dc"))
FROZEN_BRUSH = QBrush(QColor("#8a8f95"))
NOT_LOADED_BRUSH = QBrush(QColor("#b35c00"))  # the checkpoint did not provide this tensor

AnyIndex = QModelIndex | QPersistentModelIndex


@dataclass(eq=False)
class _Node:
    label: str
    path: str
    parent: _Node | None
    info: TensorInfo | None = None
    children: list[_Node] = field(default_factory=list)
    row: int = 0


def _not_loaded(session: Session) -> dict[str, str]:
    report = session.report
    if report is None:
        return {}
    out = {name: "not in the checkpoint: left as the model built it" for name in report.missing}
    for name, ckpt_shape, _model_shape in report.mismatched:
        out[name] = f"the checkpoint's tensor has shape {list(ckpt_shape)}: left as the model built it"
    return out


def _dtype(info: TensorInfo) -> str:
    return str(info.dtype).removeprefix("torch.")


class ParameterTreeModel(QAbstractItemModel):
    """Modules and tensors of a session with shape, dtype, device, kind and edit/gradient markers."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session: Session | None = None
        self._root = _Node("", "", None)
        self._by_name: dict[str, _Node] = {}
        self._staged: set[str] = set()
        self._edited: set[str] = set()
        self._grad: dict[str, GradStatus] = {}
        self._grad_stale = False  # the weights changed since the check these statuses come from
        self._not_loaded: dict[str, str] = {}  # name -> why the checkpoint did not fill it
        self._findings: dict[str, list[Finding]] = {}  # error and warning findings by tensor
        self._diffs: dict[str, TensorDiff] = {}
        self._module_diffs: dict[str, tuple[float | None, int | None]] = {}  # path -> (max |Δ|, changed)

    # ------------------------------------------------------------------ feeding it
    def set_session(self, session: Session | None) -> None:
        self.beginResetModel()
        self._session = session
        self._root = _Node("", "", None)
        self._by_name = {}
        self._grad, self._not_loaded, self._grad_stale = {}, {}, False
        self._findings, self._diffs, self._module_diffs = {}, {}, {}
        if session is not None:
            for name, info in session.infos().items():
                self._insert(name, info)
            self._grad = statuses(session.last_backward)
            self._not_loaded = _not_loaded(session)
        self._read_markers()
        self.endResetModel()

    def _insert(self, name: str, info: TensorInfo) -> None:
        node = self._root
        parts = name.split(".")
        for depth, part in enumerate(parts[:-1]):
            path = ".".join(parts[: depth + 1])
            child = next((c for c in node.children if c.info is None and c.label == part), None)
            if child is None:
                child = _Node(part, path, node, row=len(node.children))
                node.children.append(child)
            node = child
        leaf = _Node(parts[-1], name, node, info, row=len(node.children))
        node.children.append(leaf)
        self._by_name[name] = leaf

    def _read_markers(self) -> None:
        s = self._session
        if s is None:
            self._staged, self._edited = set(), set()
            return
        self._staged = s.staged_names()
        self._edited = s.edited_names()

    def refresh_markers(self) -> None:
        """Re-read staged/edited state and device after the session changed; only the rows whose
        marks or facts changed are announced (announcing every row made the proxy and the view
        read ~500k cells of a GPT-2 after each commit: 7 s)."""
        if self._session is None:
            return
        before = (set(self._staged), set(self._edited))
        self._read_markers()
        changed = (before[0] ^ self._staged) | (before[1] ^ self._edited)
        for name, info in self._session.infos().items():
            node = self._by_name.get(name)
            if node is not None and node.info != info:
                node.info = info
                changed.add(name)
        for name in changed:
            node = self._by_name.get(name)
            if node is not None:
                parent = self._index_of(node.parent) if node.parent is not None else QModelIndex()
                self.dataChanged.emit(self.index(node.row, 0, parent), self.index(node.row, len(COLUMNS) - 1, parent))

    def set_backward_report(self, report: BackwardReport | None) -> None:
        self._grad = statuses(report)
        self._grad_stale = False
        self._emit_all_changed(self._root)

    def set_findings(self, report: ScanReport | None) -> None:
        """Mark every tensor with an error or warning finding of ``report`` (None: no marks)."""
        findings: dict[str, list[Finding]] = {}
        for f in report.findings if report is not None else []:
            if f.severity in ("error", "warning"):
                findings.setdefault(f.tensor, []).append(f)
        if findings != self._findings:
            self._findings = findings
            self._emit_all_changed(self._root)

    def findings_for(self, name: str) -> list[Finding]:
        return list(self._findings.get(name, []))

    def set_comparison(self, report: CompareReport | None) -> None:
        """Fill the change columns from ``report`` (None: empty them)."""
        self._diffs = report.by_name() if report is not None else {}
        self._module_diffs = {}
        self._aggregate(self._root)
        self._emit_all_changed(self._root)

    def _aggregate(self, node: _Node) -> tuple[float | None, int | None]:
        if node.info is not None:
            d = self._diffs.get(node.path)
            return (d.max_abs_diff, d.changed_cells) if d is not None else (None, None)
        peaks, counts = [], []
        for child in node.children:
            peak, count = self._aggregate(child)
            peaks += [peak] if peak is not None else []
            counts += [count] if count is not None else []
        out = (max(peaks) if peaks else None, sum(counts) if counts else None)
        self._module_diffs[node.path] = out
        return out

    def diff_for(self, name: str) -> TensorDiff | None:
        return self._diffs.get(name)

    def mark_backward_stale(self) -> None:
        """The weights changed since the check: its icons become rings, its tooltips say so."""
        if self._grad and not self._grad_stale:
            self._grad_stale = True
            self._emit_all_changed(self._root)

    def backward_stale(self) -> bool:
        return self._grad_stale

    def _emit_all_changed(self, node: _Node) -> None:
        if node.children:
            parent = self._index_of(node)
            last = len(node.children) - 1
            self.dataChanged.emit(self.index(0, 0, parent), self.index(last, len(COLUMNS) - 1, parent))
            for child in node.children:
                self._emit_all_changed(child)

    # ------------------------------------------------------------------ lookups
    def index_for_name(self, name: str) -> QModelIndex:
        node = self._by_name.get(name)
        return self._index_of(node) if node is not None else QModelIndex()

    def name_for_index(self, index: AnyIndex) -> str | None:
        node = self._node(index)
        return node.path if node is not None and node.info is not None else None

    def info_for_index(self, index: AnyIndex) -> TensorInfo | None:
        node = self._node(index)
        return None if node is None else node.info

    def tensor_names(self) -> list[str]:
        return list(self._by_name)

    def _node(self, index: AnyIndex) -> _Node | None:
        return index.internalPointer() if index.isValid() else None

    def _index_of(self, node: _Node) -> QModelIndex:
        if node is self._root:
            return QModelIndex()
        return self.createIndex(node.row, 0, node)

    # ------------------------------------------------------------------ QAbstractItemModel
    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        # The bounds by hand: hasIndex() calls rowCount/columnCount back through Python.
        node = (parent.internalPointer() if parent.isValid() else None) or self._root
        if row < 0 or column < 0 or column >= len(COLUMNS) or row >= len(node.children) or \
                (parent.isValid() and parent.column() > 0):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: AnyIndex | None = None) -> Any:  # type: ignore[override]
        if index is None:  # QObject.parent(), which shares the name
            return super().parent()
        node = self._node(index)
        if node is None or node.parent is None or node.parent is self._root:
            return QModelIndex()
        return self.createIndex(node.parent.row, 0, node.parent)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.column() > 0:
            return 0
        node = self._node(parent) or self._root
        return len(node.children)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.InitialSortOrderRole:
            # A first click on a change column puts the biggest change on top.
            return Qt.SortOrder.DescendingOrder if section in COMPARE_COLUMNS else Qt.SortOrder.AscendingOrder
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self._node(index)
        if node is None:
            return None
        info = node.info
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._compare_text(node, col) if col in COMPARE_COLUMNS else self._display(node, col)
        if role == SORT_ROLE:
            return self._sort_key(node, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in COMPARE_COLUMNS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if info is None:
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"module {node.path}"
            return None
        findings = self._findings.get(node.path, [])
        worst = worst_severity([f.severity for f in findings])
        if role == FINDINGS_ROLE:
            return worst
        marker = "staged" if node.path in self._staged else "edited" if node.path in self._edited else ""
        status = self._grad.get(node.path)
        if role == NAME_ROLE:
            return node.path
        if role == GRAD_STATUS_ROLE:
            return status
        if role == MARKER_ROLE:
            return marker
        if role == Qt.ItemDataRole.DecorationRole and col == 0 and worst is not None:
            return severity_icon(worst, status, stale=self._grad_stale)
        if role == Qt.ItemDataRole.DecorationRole and col == 0 and status is not None:
            return status_icon(status, stale=self._grad_stale)
        if role == Qt.ItemDataRole.BackgroundRole and marker:
            return STAGED_BRUSH if marker == "staged" else EDITED_BRUSH
        if role == Qt.ItemDataRole.ForegroundRole:
            if node.path in self._not_loaded:
                return NOT_LOADED_BRUSH
            return FROZEN_BRUSH if info.frozen else None
        if role == Qt.ItemDataRole.FontRole and marker and col == 0:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node, marker, status, findings)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, node: _Node, col: int) -> str:
        info = node.info
        if col == 0:
            if info is not None and node.path in self._staged:
                return f"{node.label} *"
            return node.label
        if info is None:
            return "module" if col == 4 else ""
        if col == 1:
            return "×".join(map(str, info.shape)) if info.shape else "scalar"
        if col == 2:
            return _dtype(info)
        if col == 3:
            return str(info.device)
        kind = info.kind
        if info.frozen:
            kind += " · frozen"
        if info.aliases:
            kind += " · tied"
        if info.read_only:
            kind += " · read-only"
        return kind

    def _compare_text(self, node: _Node, col: int) -> str:
        if node.info is None:
            peak, count = self._module_diffs.get(node.path, (None, None))
            return {5: "" if peak is None else f"{peak:.3g}", 7: "" if count is None else f"{count:,}"}.get(col, "")
        d = self._diffs.get(node.path)
        if d is None:
            return ""
        if d.status in DIFF_STATUS_TEXT:
            return DIFF_STATUS_TEXT[d.status] if col == 5 else ""
        value = {5: d.max_abs_diff, 6: d.rel_change, 7: d.changed_cells}[col]
        if value is None:
            return ""
        if col == 7:
            return f"{value:,}"
        return "∞" if value == float("inf") else f"{value:.3g}"

    def _sort_key(self, node: _Node, col: int) -> Any:
        if col not in COMPARE_COLUMNS:
            return self._display(node, col)
        if node.info is None:
            peak, count = self._module_diffs.get(node.path, (None, None))
            value = {5: peak, 7: count}.get(col)
        else:
            d = self._diffs.get(node.path)
            value = None if d is None else {5: d.max_abs_diff, 6: d.rel_change, 7: d.changed_cells}[col]
        return -1.0 if value is None else float(value)  # nothing to compare sorts below "no change"

    def _tooltip(self, node: _Node, marker: str, status: GradStatus | None, findings: list[Finding]) -> str:
        info = node.info
        assert info is not None
        lines = [f"<b>{node.path}</b>", f"{info.kind}, {_dtype(info)}, shape {list(info.shape)}, {info.numel:,} values"]
        if info.aliases:
            lines.append("tied: also named " + ", ".join(info.aliases))
        if info.frozen:
            lines.append("frozen (requires_grad=False)")
        if info.read_only:
            lines.append(f"read-only: {info.read_only}")
        if node.path in self._not_loaded:
            lines.append(self._not_loaded[node.path])
        if marker == "staged":
            lines.append("has staged edits (not committed yet)")
        elif marker == "edited":
            lines.append("edited by a commit in this session")
        if status is not None:
            lines.append(f"gradient: {status.value} — {MEANINGS[status]}"
                         + (" (from before the last change: run the check again)" if self._grad_stale else ""))
        lines += [f"<span style='color:#b3261e'>scan: {escape(f.describe())}</span>" for f in findings]
        diff = self._diffs.get(node.path)
        if diff is not None:
            lines.append(f"compared with A: {escape(diff.describe())}")
        return "<br>".join(lines)
