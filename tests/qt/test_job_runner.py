"""The job runner's preemptible jobs and progress (issue 10: the automatic scan never holds the
window up), and the guard against PySide6's lost references to None."""

from __future__ import annotations

import sys
import threading

from paramedit.qt.job_runner import JobRunner
from paramedit.qt.none_refcount_guard import leaked_per_call


def test_a_preemptible_job_gives_way_to_the_next_one(qtbot):
    jobs = JobRunner()
    release = threading.Event()
    events: list[str] = []
    jobs.run("background", release.wait, 10, on_result=lambda _r: events.append("background result"),
             on_error=lambda e: events.append(f"error {e}"), on_preempted=lambda: events.append("preempted"),
             preemptible=True)
    assert jobs.running and not jobs.busy
    finished: list[str] = []
    jobs.jobFinished.connect(finished.append)
    jobs.run("user", lambda: 42, on_result=lambda r: events.append(f"user {r}"),
             on_error=lambda e: events.append(f"error {e}"))
    assert jobs.busy and jobs.label == "user"
    assert events == ["preempted"] and finished == ["background"]
    qtbot.waitUntil(lambda: "user 42" in events, timeout=5000)
    assert finished == ["background", "user"]
    release.set()
    jobs.wait_for_threads()
    qtbot.wait(20)
    assert events == ["preempted", "user 42"]  # the abandoned job's result was dropped


def test_progress_reaches_the_gui_thread_and_stale_progress_is_dropped(qtbot):
    jobs = JobRunner()
    seen: list[tuple[int, int, str]] = []
    jobs.jobProgressed.connect(lambda done, total, what: seen.append((done, total, what)))

    def work(progress):
        for i in range(3):
            progress(i, 3, f"t{i}")
        return "done"

    with qtbot.waitSignal(jobs.jobFinished, timeout=5000):
        jobs.run("work", work, on_result=lambda _r: None, on_error=lambda _e: None, with_progress=True)
    assert seen == [(0, 3, "t0"), (1, 3, "t1"), (2, 3, "t2")]
    stale = threading.Event()
    seen.clear()

    def late(progress):
        stale.wait(5)
        progress(1, 1, "late")

    jobs.run("late", late, on_result=lambda _r: None, on_error=lambda _e: None, with_progress=True,
             cancellable=True)
    jobs.cancel()
    stale.set()
    jobs.wait_for_threads()
    qtbot.wait(20)
    assert seen == []


def test_none_keeps_enough_references_whatever_pyside_loses(qapp):
    # conftest calls protect_none(): where PySide6 loses a reference to None per call returning
    # nothing, None must have been given a ballast, or a long run aborts ("none_dealloc").
    assert leaked_per_call() < 0.5 or sys.getrefcount(None) > 10**9
