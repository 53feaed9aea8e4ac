"""The window's backward check, as it runs in a worker: the whole model, or the edited
parameters alone when asked or when the whole model's check would not fit in memory."""

from __future__ import annotations

from paramedit.core.errors import CheckTooBigError
from paramedit.core.model.backward_check import BackwardReport
from paramedit.core.model.check_memory import size_text
from paramedit.core.session import Session


def edited_parameters(session: Session) -> list[str]:
    """The parameters whose values differ from the checkpoint now."""
    edited = session.edited_names()
    return sorted(name for name, info in session.infos().items() if name in edited and info.kind == "parameter")


def run_window_check(session: Session, exprs: list[str] | None, only: list[str] | None = None) -> BackwardReport:
    """``session.run_backward`` on ``exprs`` (None: the session's inputs) over ``only`` (None: every
    parameter). A full check that would not fit falls back to the edited parameters, and says so."""
    inputs = {"input_exprs": exprs} if exprs else {}
    try:
        return session.run_backward(only=only, **inputs)
    except CheckTooBigError as exc:
        edited = edited_parameters(session)
        if only or not edited:
            raise
        report = session.run_backward(only=edited, **inputs)
        free = f"{size_text(exc.free)} is free" if exc.free is not None else "free memory is unknown"
        report.notes.append(f"the whole model's check needs about {size_text(exc.needs)} and {free}: the "
                            f"{len(edited)} edited parameter(s) were checked alone")
        return report
