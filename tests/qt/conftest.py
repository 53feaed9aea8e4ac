import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# ---------------------------------------------------------------- main window fixtures (issue 3)
import pytest


def pytest_configure(config):
    """PySide6 6.12 on Python <= 3.11 drops a reference to None per Qt call returning nothing, and
    a long run aborts at exit ("none_dealloc"): see paramedit/qt/none_refcount_guard.py."""
    from paramedit.qt.none_refcount_guard import protect_none

    protect_none()


def _unexpected_prompt(name: str):
    def ask(*args, **kwargs):
        raise AssertionError(f"a test opened the {name!r} dialog without expecting it")

    return ask


@pytest.fixture(autouse=True)
def _isolated_gui_state(tmp_path, monkeypatch):
    """Settings in a scratch file, and no modal question can block a test unannounced.

    A test that expects a question replaces that one ``prompts.ask_*`` function itself.
    """
    from paramedit.qt import error_dialog, prompts, settings

    settings.use_settings_file(tmp_path / "paramedit-settings.ini")
    for name in dir(prompts):
        if name.startswith("ask_"):
            monkeypatch.setattr(prompts, name, _unexpected_prompt(name))
    yield
    for box in list(error_dialog.open_error_dialogs):
        box.close()
    error_dialog.open_error_dialogs.clear()
    settings.use_settings_file(None)


@pytest.fixture
def demo_session():
    """A fresh session of the bundled demo model and checkpoint."""
    import paramedit
    from paramedit.demo import demo_checkpoint, demo_model_spec

    return paramedit.open_session(demo_model_spec(), demo_checkpoint())


@pytest.fixture
def make_window(qtbot, monkeypatch):
    """Build a shown MainWindow for a session; closed (discarding changes) after the test."""
    from paramedit.qt import prompts
    from paramedit.qt.job_runner import JobRunner
    from paramedit.qt.main_window import MainWindow

    windows = []

    def make(session=None):
        window = MainWindow(session)
        windows.append(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield make
    monkeypatch.setattr(prompts, "ask_unsaved_changes", lambda *a, **k: prompts.UnsavedChoice.DISCARD)
    for window in windows:
        window.jobs.cancel()
        window.close()
        window.deleteLater()
    JobRunner.wait_for_threads()


@pytest.fixture
def window(make_window, demo_session):
    """The demo open in a shown MainWindow."""
    return make_window(demo_session)
