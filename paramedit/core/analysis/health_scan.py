"""The health scan: every NaN, Inf, outlier, dead row or column and constant tensor, with where.

Every value of every floating-point tensor is read once, a block of rows at a time (through the
file for memory-mapped checkpoints, see :mod:`chunked_reads`), with reductions that run at
memory speed: per-row L2 norms (a row whose norm is 0 is all zeros, one whose norm is not
finite holds a NaN or Inf), the block's min and max, per-column "any non-zero", and an even
sample. Only tensors where those say something is there are read a second time, to count and
locate it exactly.

Outliers use a robust scale: ``sigma = 1.4826 * MAD``, the median absolute deviation from the
median, estimated on an even sample of up to 65,536 values. The median and the MAD ignore the
outliers themselves (a single 1e4 inflates the RMS of a 768-value bias 3.7-fold, and can hide
behind it), and for normally distributed values sigma equals the standard deviation. A value is
an outlier when ``|v - median| > 20 * sigma``: a fresh ``normal_`` initialisation of GPT-2's 38.6M
embedding values reaches about 6 sigma, so 20 never fires on it, while a value 100x its
tensor's RMS lies about 100 sigma out.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from paramedit.core.analysis.chunked_reads import ChunkReader
from paramedit.core.checkpoints.mapped_reads import MappedFile
from paramedit.core.errors import ParameditError

__all__ = ["OUTLIER_SIGMAS", "Finding", "ScanCancelled", "ScanReport", "narrower_glob", "scan_tensors",
           "select_names"]

OUTLIER_SIGMAS = 20.0
SAMPLE_SIZE = 65_536
MIN_OUTLIER_NUMEL = 32  # fewer values say nothing about a distribution
_MAD_TO_SIGMA = 1.4826
SEVERITY = {"nan": "error", "inf": "error", "outlier": "warning", "dead_row": "warning",
            "dead_column": "warning", "constant": "info"}  # fmt: skip
_RANK = {"error": 0, "warning": 1, "info": 2}
_NATIVE = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class ScanCancelled(ParameditError):
    """The scan was cancelled; nothing it found so far is reported."""


@dataclass
class Finding:
    """One thing the scan found in one tensor.

    ``index`` is a region string: ``[31337, 17]`` for a cell, ``[777, :]`` for a row,
    ``[:, 5]`` for a column, ``[...]`` for the whole tensor; the first one when ``count`` > 1.
    ``position`` is the same as numbers (a cell's indices, or the row or column index), for a
    view to go to.
    """

    tensor: str
    kind: str
    severity: str
    index: str
    count: int
    value: float | None
    position: tuple[int, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        value = self.value if self.value is None or math.isfinite(self.value) else None
        return {"tensor": self.tensor, "kind": self.kind, "severity": self.severity, "index": self.index,
                "count": self.count, "value": value}

    def describe(self) -> str:
        """One line for people: what, where, how many."""
        what = {"nan": "NaN", "inf": "Inf", "outlier": "outlier", "dead_row": "all-zero row",
                "dead_column": "all-zero column", "constant": f"every one of the {self.count} values of"}[self.kind]
        if self.kind == "constant":
            return f"{self.severity}: {what} {self.tensor} is {self.value:.6g}"
        more = f" ({self.count} in all, first shown)" if self.count > 1 and self.kind != "constant" else ""
        value = "" if self.value is None or self.kind in ("nan", "dead_row", "dead_column") else f" = {self.value:.6g}"
        note = f"; {self.note}" if self.note else ""
        return f"{self.severity}: {what} in {self.tensor}{self.index}{value}{more}{note}"


@dataclass
class ScanReport:
    """What :func:`scan_tensors` found, most severe first."""

    checkpoint: str | None
    tensors_scanned: int
    findings: list[Finding] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # tensors not scanned, with why
    bytes_read: int = 0
    scanned_names: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def for_tensor(self, name: str) -> list[Finding]:
        return [f for f in self.findings if f.tensor == name]

    def tensors_with(self, *severities: str) -> list[str]:
        """Names with a finding of one of ``severities`` (all when none given), in finding order."""
        wanted = set(severities) or set(_RANK)
        return list(dict.fromkeys(f.tensor for f in self.findings if f.severity in wanted))

    def replace(self, other: ScanReport) -> ScanReport:
        """This report with the tensors ``other`` scanned replaced by what it found (a re-scan)."""
        names = {f.tensor for f in other.findings} | set(other.scanned_names)
        findings = [f for f in self.findings if f.tensor not in names] + other.findings
        merged = ScanReport(self.checkpoint, self.tensors_scanned, _sorted(findings), dict(self.skipped))
        merged.scanned_names = list(dict.fromkeys([*self.scanned_names, *other.scanned_names]))
        return merged

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(_RANK, 0)
        for f in self.findings:
            out[f.severity] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        if not self.findings:
            return f"scanned {self.tensors_scanned} tensors: nothing found"
        parts = [f"{n} {s}{'s' if n != 1 else ''}" for s, n in c.items() if n]
        return f"scanned {self.tensors_scanned} tensors: {', '.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "tensors_scanned": self.tensors_scanned,
                "findings": [f.to_json() for f in self.findings]}


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: _RANK[f.severity])  # stable: tensor order within a severity


def select_names(names: Iterable[str], globs: Iterable[str] | None) -> list[str]:
    """The names matching any of ``globs`` (all without); a glob that matches nothing is an error."""
    names = list(names)
    globs = [g for g in (globs or []) if g]
    if not globs:
        return names
    chosen: list[str] = []
    for glob in globs:
        matched = [n for n in names if fnmatch.fnmatchcase(n, glob)]
        if not matched:
            raise ParameditError(f"--only {glob!r} matches no tensor (there are {len(names)}, e.g. "
                                 f"{', '.join(names[:3])})")
        chosen.extend(matched)
    wanted = set(chosen)
    return [n for n in names if n in wanted]


def narrower_glob(names: list[str]) -> str:
    """A glob for the last numbered block of ``names`` (``model.layers.31.*``), to check a part."""
    for name in reversed(names):
        parts = name.split(".")
        for i in range(len(parts) - 1, -1, -1):
            if parts[i].isdigit():
                return ".".join(parts[: i + 1]) + ".*"
    return (names[-1].rsplit(".", 1)[0] + ".*") if names and "." in names[-1] else "NAME*"


def _region(shape: tuple[int, ...], *, cell: tuple[int, ...] | None = None, row: int | None = None,
            column: int | None = None) -> str:
    if not shape:
        return "[...]"
    if cell is not None:
        return "[" + ", ".join(map(str, cell)) + "]"
    parts = [":"] * len(shape)
    if row is not None:
        parts[0] = str(row)
    if column is not None:
        parts[1] = str(column)
    return "[" + ", ".join(parts) + "]"


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for n in reversed(shape):
        out.append(flat % n)
        flat //= n
    return tuple(reversed(out))


@dataclass
class _FirstHit:
    """Count of matching values and the first one (flat index, value)."""

    count: int = 0
    flat: int = -1
    value: float = math.nan

    def add(self, mask: torch.Tensor, values: torch.Tensor, offset: int) -> None:
        n = int(torch.count_nonzero(mask))  # not mask.sum(): ~15x slower on the CPU
        if n and self.flat < 0:
            i = int(torch.argmax(mask.reshape(-1).to(torch.uint8)))
            self.flat, self.value = offset + i, float(values.reshape(-1)[i])
        self.count += n


class _TensorScan:
    """The findings of one tensor."""

    def __init__(self, name: str, tensor: torch.Tensor, reader: ChunkReader, padding_row: int | None) -> None:
        self.name, self.t, self.reader, self.padding_row = name, tensor, reader, padding_row
        self.shape = tuple(tensor.shape)
        self.numel = tensor.numel()
        self.rows = self.shape[0] if self.shape else 1
        self.per_row = self.numel // self.rows if self.rows else 0

    def _float_blocks(self, check: Callable[[], None] | None = None):
        for block in self.reader.blocks(self.t):
            if check is not None:
                check()
            values = block.values if block.values.dtype in _NATIVE else block.values.float()
            if values.device.type == "meta":
                return
            yield block.start, values.reshape(values.shape[0] if values.ndim else 1, -1)

    def run(self, check: Callable[[], None]) -> list[Finding]:
        if self.numel == 0:
            return []
        two_d = len(self.shape) >= 2
        row_norm = torch.empty(self.rows, dtype=torch.float64)
        col_nonzero = torch.zeros(self.shape[1], dtype=torch.bool) if two_d else None
        lo, hi = math.inf, -math.inf
        step = max(1, self.numel // SAMPLE_SIZE)
        samples: list[torch.Tensor] = []
        for start, m in self._float_blocks(check):
            n = m.shape[0]
            half = m.dtype in (torch.float16, torch.bfloat16)
            norms = torch.linalg.vector_norm(m, dim=1, dtype=torch.float32 if half else None)
            row_norm[start : start + n] = norms.double().cpu()
            small, big = (float(v) for v in torch.aminmax(m))
            if not (math.isfinite(small) and math.isfinite(big)):  # rare: this block holds a NaN or Inf
                finite = m[torch.isfinite(m)]
                small, big = (float(v) for v in torch.aminmax(finite)) if finite.numel() else (lo, hi)
            lo, hi = min(lo, small), max(hi, big)
            if two_d:
                assert col_nonzero is not None
                # A column is all zeros when its max and min are (NaN counts as non-zero); amax/amin
                # along a dim run several times faster than ne(0).any() on the CPU.
                cols = m if len(self.shape) == 2 else m.reshape(n, self.shape[1], -1)
                dims = 0 if len(self.shape) == 2 else (0, 2)
                col_nonzero |= (cols.amax(dim=dims).ne(0) | cols.amin(dim=dims).ne(0)).cpu()
            first = start * self.per_row
            samples.append(m.reshape(-1)[(-first) % step :: step].double().cpu())
        sample = torch.cat(samples) if samples else torch.empty(0, dtype=torch.float64)
        findings: list[Finding] = []
        finite_rows = torch.isfinite(row_norm)
        nonfinite = not bool(finite_rows.all())
        sample = sample[torch.isfinite(sample)]
        if nonfinite:
            findings += self._nonfinite((~finite_rows).nonzero().reshape(-1), check)
        if not nonfinite and lo == hi:  # min == max: every value is the same
            return [*findings, Finding(self.name, "constant", "info", "[...]", self.numel, lo)]
        if two_d:
            findings += self._dead(row_norm, col_nonzero)
        if math.isfinite(lo) and math.isfinite(hi):  # else: no finite value at all
            findings += self._outliers(sample, max(abs(lo), abs(hi)), check)
        return findings

    def _nonfinite(self, rows: torch.Tensor, check) -> list[Finding]:
        """Count and locate NaN and Inf, reading only the rows whose norm was not finite."""
        nan, inf = _FirstHit(), _FirstHit()
        flat = self.t.detach().reshape(self.rows, -1)
        for k in range(0, rows.numel(), 256):
            check()
            chunk = rows[k : k + 256]
            m = flat[chunk.to(flat.device)]
            m = m if m.dtype in _NATIVE else m.float()
            for j, row in enumerate(chunk.tolist()):
                offset = row * self.per_row
                nan.add(torch.isnan(m[j]), m[j], offset)
                inf.add(torch.isinf(m[j]), m[j], offset)
        out = []
        for kind, hit in (("nan", nan), ("inf", inf)):
            if hit.count:
                cell = _unravel(hit.flat, self.shape) if self.shape else ()
                out.append(Finding(self.name, kind, "error", _region(self.shape, cell=cell), hit.count,
                                   hit.value, cell))
        return out

    def _dead(self, row_norm: torch.Tensor, col_nonzero: torch.Tensor | None) -> list[Finding]:
        out = []
        dead_rows = (row_norm == 0).nonzero().reshape(-1).tolist()
        if self.padding_row is not None and self.padding_row in dead_rows:
            dead_rows.remove(self.padding_row)
            out.append(Finding(self.name, "dead_row", "info", _region(self.shape, row=self.padding_row), 1, 0.0,
                               (self.padding_row,), note="the embedding's padding_idx, zero by design"))
        if dead_rows:
            out.append(Finding(self.name, "dead_row", "warning", _region(self.shape, row=dead_rows[0]),
                               len(dead_rows), 0.0, (dead_rows[0],)))
        if col_nonzero is not None:
            dead_cols = (~col_nonzero).nonzero().reshape(-1).tolist()
            if dead_cols:
                out.append(Finding(self.name, "dead_column", "warning", _region(self.shape, column=dead_cols[0]),
                                   len(dead_cols), 0.0, (dead_cols[0],)))
        return out

    def _outliers(self, sample: torch.Tensor, absmax: float, check) -> list[Finding]:
        if self.numel < MIN_OUTLIER_NUMEL or sample.numel() < MIN_OUTLIER_NUMEL:
            return []
        median = float(sample.median())
        sigma = _MAD_TO_SIGMA * float((sample - median).abs().median())
        if sigma == 0.0:  # more than half the values are equal: fall back to the spread of the rest
            sigma = float((sample - median).pow(2).mean().sqrt())
        if sigma == 0.0 or not math.isfinite(sigma):
            return []
        threshold = OUTLIER_SIGMAS * sigma
        if absmax + abs(median) <= threshold:
            return []  # no value can be that far from the median
        hit = _FirstHit()
        for start, m in self._float_blocks(check):
            # Comparisons against the two bounds: no float temporaries the size of the block.
            far = m.gt(median + threshold)
            far |= m.lt(median - threshold)
            far &= torch.isfinite(m)  # NaN compares False anyway; Inf is reported as inf, not here
            hit.add(far, m, start * self.per_row)
        if not hit.count:
            return []
        cell = _unravel(hit.flat, self.shape) if self.shape else ()
        note = f"|v - median| > {OUTLIER_SIGMAS:g} sigma (median {median:.3g}, sigma {sigma:.3g})"
        return [Finding(self.name, "outlier", "warning", _region(self.shape, cell=cell), hit.count, hit.value, cell,
                        note=note)]


def scan_tensors(
    tensors: Mapping[str, torch.Tensor],
    *,
    files: Iterable[MappedFile] = (),
    padding_rows: Mapping[str, int] | None = None,
    checkpoint: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ScanReport:
    """Scan every floating-point tensor of ``tensors`` (name -> tensor) once.

    ``files`` are the memory mappings the tensors may live in (read through the file, so the
    scan does not make them resident); ``padding_rows`` maps an embedding weight to its
    ``padding_idx``, whose zero row is reported as info. ``progress(done, total, name)`` is
    called before each tensor; when ``cancelled()`` turns true, :class:`ScanCancelled` is raised.
    """
    reader = ChunkReader(files)
    names = list(tensors)
    report = ScanReport(checkpoint, 0)
    findings: list[Finding] = []

    def check() -> None:
        if cancelled is not None and cancelled():
            raise ScanCancelled("the scan was cancelled")

    for i, name in enumerate(names):
        check()
        if progress is not None:
            progress(i, len(names), name)
        t = tensors[name]
        reason = _not_scanned(t)
        if reason:
            report.skipped[name] = reason
            continue
        findings += _TensorScan(name, t, reader, (padding_rows or {}).get(name)).run(check)
        report.tensors_scanned += 1
        report.scanned_names.append(name)
    if progress is not None:
        progress(len(names), len(names), "")
    report.findings = _sorted(findings)
    report.bytes_read = reader.bytes_from_file + reader.bytes_from_memory
    return report


def _not_scanned(t: torch.Tensor) -> str | None:
    if t.layout != torch.strided or t.is_quantized or t.is_nested:
        return "not a dense tensor"
    if t.device.type == "meta":
        return "no values (meta)"
    if not t.is_floating_point():
        return f"{str(t.dtype).removeprefix('torch.')}: only floating-point tensors are scanned"
    return None
