"""Keeps the Outputs panel's probes: the model's outputs before and after the last change.

After each commit, undo and redo the controller probes the model again in a worker thread
(debounced; a newer change stops the running probe at its next module), on the very inputs of
the previous probe, and compares. A probe whose forward pass took more than :data:`SLOW_PROBE_S`
turns the automatic re-run off: the panel shows Run instead. Results are kept per state of the
history, so Undo and Redo flip between outputs already known, without a forward pass.

The comparison's baseline is the state before the last change, the checkpoint as opened (any
probe of a state with no edited values), or a pinned state: with the last two, several commits
compare with one reference, and Undo/Redo work as an A/B toggle.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from shiboken6 import isValid
from superqt.utils import create_worker

from paramedit.core.errors import ParameditError
from paramedit.core.model.inputs import guessed_input_exprs
from paramedit.core.model.probe import ProbeChange, ProbeResult
from paramedit.core.session import Session
from paramedit.qt import unattended
from paramedit.qt.image_input import takes_image
from paramedit.qt.outputs_state import Baseline, InputChoice, OutputsState, describe_inputs, input_shapes
from paramedit.qt.probe_job import ProbeCancelled, ProbeOutcome, ProbeRequest, run_probe
from paramedit.qt.scan_controller import scannable_elements

PROBE_DELAY_MS = 150  # a burst of undos is probed once, at its end
AUTO_PROBE_DELAY_MS = 300  # after opening: the window paints the model first
SLOW_PROBE_S = 2.0  # a forward pass slower than this is re-run only on request
AUTO_PROBE_ELEMENTS = 500_000_000  # bigger models are not run when they open: press Run
CACHE_SIZE = 8  # states whose outputs are kept (A/B toggles need two)
DEFAULT_GENERATE = 5  # tokens of greedy continuation after a prompt


@dataclass
class _Entry:
    """The outputs of one state of the history: the commits applied, oldest first."""

    result: ProbeResult
    key: tuple[int, ...]  # ids of the applied commits
    records: tuple[weakref.ref, ...]  # not kept alive: a commit dropped from the history frees its values
    seconds: float

    @classmethod
    def of(cls, result: ProbeResult, records: list, seconds: float) -> _Entry:
        return cls(result, tuple(id(r) for r in records), tuple(weakref.ref(r) for r in records), seconds)

    @property
    def alive(self) -> bool:
        """Its commits all still exist (else an id in the key may name another commit now)."""
        return all(ref() is not None for ref in self.records)


@dataclass
class _Results:
    cache: OrderedDict[tuple[int, ...], _Entry] = field(default_factory=OrderedDict)
    current: _Entry | None = None
    previous: _Entry | None = None
    opened: _Entry | None = None
    pinned: _Entry | None = None


class ProbeController(QObject):
    """The probes of one window; :meth:`attach` a session, call :meth:`weights_changed` after
    each commit, undo and redo. Model jobs that must not run beside a probe take :attr:`lock`."""

    stateChanged = Signal(object)  # OutputsState
    probeFinished = Signal(object)  # ProbeResult of the model as it is now
    probeFailed = Signal(str)  # why a probe could not run

    def __init__(self, parent: QObject | None = None, *, slow_seconds: float | None = None,
                 delay_ms: int = PROBE_DELAY_MS) -> None:
        super().__init__(parent)
        self.lock = threading.Lock()
        self.slow_seconds = SLOW_PROBE_S if slow_seconds is None else slow_seconds
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)
        self._timer.timeout.connect(self._start)
        self._session: Session | None = None
        self._results = _Results()
        self._run: ProbeRequest | None = None
        self._pending = False
        self._version = 0  # weight changes so far
        self._shown_version = -1  # the change count the current outputs describe
        self._choice = InputChoice()
        self._used: Any = None  # the concrete inputs of the last probe: every probe reuses them
        self._baseline = Baseline.LAST
        self.auto = True
        self._note = ""  # why the outputs are not re-run by themselves
        self._error = ""  # why the last probe failed
        self._exprs_seen: list[str] | None = None  # the session's input expressions the last probe used
        self._has_tokenizer = False
        self._outside = False  # weights were changed outside the window's history
        self._compared: tuple | None = None  # (before, after, their change figures): see _compare
        self.generate = DEFAULT_GENERATE
        self.last_seconds: float | None = None

    # ------------------------------------------------------------------ the session
    def attach(self, session: Session | None) -> None:
        """Show ``session``'s outputs (None: none); a small model is probed at once."""
        self._stop_run()
        self._session, self._results, self._version, self._shown_version = session, _Results(), 0, -1
        self._choice, self._used, self._baseline = InputChoice(), None, Baseline.LAST
        self.auto, self._note, self._error, self._has_tokenizer, self.last_seconds = True, "", "", False, None
        self._outside = False
        if session is not None and session.model is not None:
            self._check_tokenizer(session)
            if unattended.current() is not None:
                self.auto, self._note = False, "Not run: an unattended run does not run the model by itself."
            elif (size := scannable_elements(session)) > AUTO_PROBE_ELEMENTS:
                self.auto = False
                self._note = f"{size / 1e6:,.0f} M values: press Run to see the outputs (one forward pass)."
            else:
                QTimer.singleShot(AUTO_PROBE_DELAY_MS, self, self._start_if_auto)
        elif session is not None:
            self.auto, self._note = False, "The outputs need a model; this session has only a checkpoint's tensors."
        self._emit()

    def stop(self) -> None:
        """The window closes: stop the running probe and start no other."""
        self._stop_run()
        self._session = None

    def weights_changed(self) -> None:
        """A commit, undo or redo: the outputs are out of date (re-run soon, or shown from memory)."""
        self._version += 1
        if self._session is None:
            return
        if self._run is not None:
            self._run.stop.set()  # superseded: its result would describe no state the model is in
        cached = self._results.cache.get(self._state_key())
        if cached is not None and cached.alive:
            self._pending = False
            self._show(cached)
            return
        if self.auto:
            self._timer.start()
        self._emit()

    def changed_outside(self, _names: object = None) -> None:
        """Code outside the window changed weights in place: no kept outputs describe them any more."""
        self._results.cache.clear()
        self._outside = True  # from now on no state is known to be the checkpoint as opened
        self.weights_changed()

    # ------------------------------------------------------------------ what the user chooses
    def run_now(self) -> None:
        """Probe the model as it is now (the Run button)."""
        self._error = ""
        self._start()

    def set_auto(self, on: bool) -> None:
        self.auto = on
        if on:
            self._note = ""
            if self.state().stale:
                self._start()
        self._emit()

    def set_input_exprs(self, exprs: list[str]) -> None:
        self._new_input(InputChoice(exprs=list(exprs), text="; ".join(exprs)))

    def set_prompt(self, prompt: str) -> None:
        self._new_input(InputChoice(prompt=prompt) if prompt.strip() else InputChoice())

    def set_inputs(self, inputs: Any, text: str) -> None:
        """Probe on these tensors from now on (an image file, ...)."""
        self._new_input(InputChoice(inputs=inputs, text=text))

    def set_generate(self, tokens: int) -> None:
        if tokens != self.generate:
            self.generate = tokens
            if self._choice.prompt is not None:
                self._new_input(self._choice)

    def set_baseline(self, baseline: Baseline) -> None:
        self._baseline = baseline
        self._emit()

    def pin(self) -> bool:
        """Compare with the model as it is now from here on; False when its outputs are not known yet."""
        current = self._results.current
        if current is None or self._shown_version != self._version:
            return False
        self._results.pinned, self._baseline = current, Baseline.PINNED
        self._emit()
        return True

    @property
    def used_inputs(self) -> Any:
        """The inputs of the last probe (an image goes into these), or None before the first."""
        return self._used

    def used_input_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the tensors of the last probe's inputs (a row may be shown as an image of one)."""
        return input_shapes(self._used)

    @property
    def running(self) -> bool:
        """A probe runs in a worker thread now."""
        return self._run is not None

    @property
    def scheduled(self) -> bool:
        """A probe starts when the current burst of changes has settled."""
        return self._timer.isActive()

    # ------------------------------------------------------------------ running
    def _new_input(self, choice: InputChoice) -> None:
        """Results on another input compare with nothing kept: start again from this state."""
        self._stop_run()
        self._choice, self._used = choice, None
        self._results = _Results()
        if self._baseline is Baseline.PINNED:
            self._baseline = Baseline.LAST  # the pinned state's outputs were on the other input
        self._error = ""
        self._start()

    def _start_if_auto(self) -> None:
        if self.auto and self._results.current is None and self._run is None:
            self._start()

    def _start(self) -> None:
        self._timer.stop()
        s = self._session
        if s is None or s.model is None:
            return
        if self._run is not None:
            self._run.stop.set()
            self._pending = True
            self._emit()
            return
        self._pending = False
        seen = list(s.input_exprs) if s.input_exprs else None
        if self._is_default_input() and self._used is not None and s.example_inputs is None and seen != self._exprs_seen:
            self._used, self._results = None, _Results()  # the backward check was given another input: follow it
        prompt = self._choice.prompt
        request = ProbeRequest(s, inputs=self._used if self._used is not None else self._choice.inputs,
                               input_exprs=self._choice.exprs, prompt=prompt,
                               generate=self.generate if prompt is not None else 0, version=self._version)
        self._run = request
        worker = create_worker(run_probe, request, self.lock, _start_thread=False, _ignore_errors=True)

        def returned(outcome: ProbeOutcome) -> None:
            if isValid(self):
                self._finished(request, outcome, seen)

        def errored(exc: BaseException) -> None:
            if isValid(self):
                self._failed(request, exc)

        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.start()
        self._emit()

    def _ended(self, request: ProbeRequest) -> bool:
        """Forget the finished ``request``; True when its answer still describes the model."""
        if request is self._run:
            self._run = None
        useful = request.session is self._session and not request.stop.is_set() and request.version == self._version
        if self._pending and self._run is None:
            QTimer.singleShot(0, self, self._start)
        return useful

    def _finished(self, request: ProbeRequest, outcome: ProbeOutcome, seen: list[str] | None) -> None:
        if not self._ended(request):
            self._emit()
            return
        s = request.session
        self._has_tokenizer = outcome.has_tokenizer
        self._used, self._exprs_seen = outcome.result.inputs, seen
        self.last_seconds = outcome.forward_seconds
        self._error = ""
        if outcome.forward_seconds > self.slow_seconds and self.auto:
            self.auto = False
            self._note = (f"One forward pass took {outcome.forward_seconds:.1f} s: the outputs are run again only "
                          "when you press Run.")
        entry = _Entry.of(outcome.result, s.history.records, outcome.seconds)
        self._results.cache[entry.key] = entry
        while len(self._results.cache) > CACHE_SIZE:
            self._results.cache.popitem(last=False)
        self._show(entry)
        self.probeFinished.emit(outcome.result)

    def _failed(self, request: ProbeRequest, exc: BaseException) -> None:
        if not self._ended(request) or isinstance(exc, ProbeCancelled):
            self._emit()
            return
        message = exc.message if isinstance(exc, ParameditError) else f"{type(exc).__name__}: {exc}"
        s = request.session
        if s.needs_input and self._is_default_input():
            # The window's words, not the command line's: the core message names --input.
            guess = guessed_input_exprs(s.model) if s.model is not None else None
            message = ("the model gives no example input: choose one with Input…"
                       + (f" (its first layer suggests {'; '.join(guess)})" if guess else ""))
        self._error = message
        self._emit()
        self.probeFailed.emit(message)

    def _show(self, entry: _Entry) -> None:
        r = self._results
        if r.current is not None and self._shown_version != self._version:  # the model changed since
            r.previous = r.current
        r.current, self._shown_version = entry, self._version
        r.cache.move_to_end(entry.key)
        if self._session is not None and not self._outside and not self._session.edited_names():
            r.opened = entry
        self._emit()

    def _stop_run(self) -> None:
        self._timer.stop()
        self._pending = False
        if self._run is not None:
            self._run.stop.set()
            self._run = None

    def _check_tokenizer(self, session: Session) -> None:
        """Whether a prompt box makes sense, found off the GUI thread (reading a tokenizer takes a moment)."""
        worker = create_worker(lambda: session.has_tokenizer, _start_thread=False, _ignore_errors=True)

        def returned(has: bool) -> None:
            if isValid(self) and session is self._session and has != self._has_tokenizer:
                self._has_tokenizer = bool(has)
                self._emit()

        worker.returned.connect(returned)
        worker.start()

    def _is_default_input(self) -> bool:
        c = self._choice
        return c.exprs is None and c.inputs is None and c.prompt is None

    def _state_key(self) -> tuple[int, ...]:
        return tuple(id(r) for r in self._session.history.records) if self._session is not None else ()

    # ------------------------------------------------------------------ what is shown
    def state(self) -> OutputsState:
        r, s = self._results, self._session
        after = r.current
        stale = after is None or self._shown_version != self._version
        before = {Baseline.LAST: r.previous, Baseline.OPENED: r.opened, Baseline.PINNED: r.pinned}[self._baseline]
        change, message = None, self._error
        if after is not None and before is not None and before is not after:
            change, problem = self._compare(before.result, after.result)
            message = message or problem
        error = bool(message)
        if not message:
            if self._run is not None:
                message = "Running the model…"
            elif stale and after is not None:
                message = "The weights changed: these outputs are from before." + ("" if self.auto else " Press Run.")
            elif after is not None and before is None:
                message = {Baseline.LAST: "No change since these outputs were taken: commit an edit to compare.",
                           Baseline.OPENED: "No outputs of the checkpoint as opened on this input: undo back to it "
                                            "once (they are kept), or compare with the last change.",
                           Baseline.PINNED: "Nothing is pinned: Pin keeps the state as it is now."}[self._baseline]
            elif after is not None and before is after:
                message = f"No change: the model is {self._baseline.value}."
        return OutputsState(
            before=before.result if before is not None and before is not after else None,
            after=after.result if after is not None else None, baseline=self._baseline, change=change,
            message=message, error=error, note=self._note, running=self._run is not None, stale=stale and s is not None,
            auto=self.auto, input_text=self._input_text(), has_tokenizer=self._has_tokenizer,
            prompt=self._choice.prompt, image_ok=takes_image(self._used),
            can_pin=after is not None and not stale)

    def _compare(self, before: ProbeResult, after: ProbeResult) -> tuple[ProbeChange | None, str]:
        """The change figures of two results, worked out once per pair (the state is asked often)."""
        known = self._compared
        if known is not None and known[0] is before and known[1] is after:
            return known[2]
        try:
            found: tuple[ProbeChange | None, str] = (after.compare(before), "")
        except ParameditError as exc:
            found = (None, exc.message)
        self._compared = (before, after, found)
        return found

    def _input_text(self) -> str:
        c, s = self._choice, self._session
        if c.prompt is not None:
            return f"prompt “{c.prompt}”"
        if c.text:
            return c.text + (f" ({describe_inputs(self._used)})" if self._used is not None and c.exprs else "")
        if s is None or s.model is None:
            return ""
        shapes = describe_inputs(self._used) if self._used is not None else ""
        if s.example_inputs is not None:
            return "the model's example input" + (f" ({shapes})" if shapes else "")
        if s.input_exprs:
            return "; ".join(s.input_exprs)
        return shapes or "the model's default input"

    def _emit(self) -> None:
        self.stateChanged.emit(self.state())
