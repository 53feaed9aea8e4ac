"""What the window says about a recovered autosave: when it was written, and what came back."""

from __future__ import annotations

from datetime import datetime

from paramedit.core.editing.autosave import Recovered


def counted(count: int, word: str) -> str:
    """``1 commit``, ``3 commits``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def autosave_time(context: dict) -> str:
    """When the autosave was written, in local time (``2025-03-07 14:05``), or ``?``."""
    text = context.get("timestamp")
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return str(text) if text else "?"
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def restored_message(recovered: Recovered, context: dict) -> str:
    """``Restored 3 commits (3 undo steps) and 1 staged edit from the autosave of 2025-03-07 14:05.``"""
    parts = []
    if recovered.commits:
        parts.append(f"{counted(recovered.commits, 'commit')} ({counted(recovered.commits, 'undo step')})")
    if recovered.staged:
        parts.append(counted(recovered.staged, "staged edit"))
    what = " and ".join(parts) or "nothing"
    return (f"Restored {what} from the autosave of {autosave_time(context)}. Review them, then save: "
            "nothing is written to a file until you do.")
