"""Persistent GUI settings (recent files, last folder, trusted model files, window layout).

Everything goes through :func:`app_settings`, so tests can point the whole GUI at a scratch
file with :func:`use_settings_file` and never touch the user's real settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from PySide6.QtCore import QSettings

from paramedit.qt.load_request import short_name

ORGANIZATION = "paramedit"
APPLICATION = "paramedit"
MAX_RECENT = 10

_settings_file: str | None = None


def use_settings_file(path: str | Path | None) -> None:
    """Store settings in an INI file at ``path`` (None: back to the platform's default store)."""
    global _settings_file
    _settings_file = None if path is None else str(path)


def settings_file() -> str | None:
    """The scratch settings file tests set, or None for the platform's store."""
    return _settings_file


def app_settings() -> QSettings:
    """The settings store every part of the GUI reads and writes."""
    if _settings_file is not None:
        return QSettings(_settings_file, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


@dataclass(frozen=True)
class RecentEntry:
    """One item of File > Open Recent: a model spec and/or a checkpoint path."""

    model: str | None = None
    checkpoint: str | None = None

    def label(self) -> str:
        parts = [p for p in (self.model, self.checkpoint) if p]
        return "  +  ".join(short_name(p) for p in parts) or "(empty)"


def _read_json_list(settings: QSettings, key: str) -> list:
    raw = settings.value(key, "")
    # JSON text, not a QSettings list: INI files return a one-item list as a plain string.
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else []
    except json.JSONDecodeError:
        return []
    return data if isinstance(data, list) else []


def recent_entries(settings: QSettings | None = None) -> list[RecentEntry]:
    settings = settings or app_settings()
    out = []
    for item in _read_json_list(settings, "recent"):
        if isinstance(item, dict):
            out.append(RecentEntry(item.get("model"), item.get("checkpoint")))
    return out


def add_recent_entry(entry: RecentEntry, settings: QSettings | None = None) -> None:
    settings = settings or app_settings()
    entries = [e for e in recent_entries(settings) if e != entry]
    entries.insert(0, entry)
    settings.setValue("recent", json.dumps([asdict(e) for e in entries[:MAX_RECENT]]))


def clear_recent_entries(settings: QSettings | None = None) -> None:
    (settings or app_settings()).setValue("recent", "[]")


def last_folder(settings: QSettings | None = None) -> str:
    folder = (settings or app_settings()).value("last_folder", "")
    return folder if isinstance(folder, str) and folder and Path(folder).is_dir() else str(Path.home())


def remember_folder(path: str | Path, settings: QSettings | None = None) -> None:
    p = Path(path)
    (settings or app_settings()).setValue("last_folder", str(p if p.is_dir() else p.parent))


def is_model_file_known(path: str | Path, settings: QSettings | None = None) -> bool:
    """Whether the user already agreed to run this model file's code once."""
    return str(Path(path).resolve()) in _read_json_list(settings or app_settings(), "known_model_files")


def remember_model_file(path: str | Path, settings: QSettings | None = None) -> None:
    settings = settings or app_settings()
    known = _read_json_list(settings, "known_model_files")
    resolved = str(Path(path).resolve())
    if resolved not in known:
        known.append(resolved)
        settings.setValue("known_model_files", json.dumps(known))


MAX_REMEMBERED_INPUTS = 50


def _input_table(settings: QSettings) -> dict[str, list[str]]:
    raw = settings.value("backward_inputs", "")
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, list) and all(isinstance(e, str) for e in v)}


def remembered_inputs(model_key: str, settings: QSettings | None = None) -> list[str] | None:
    """The input expressions last given for the backward check of this model (spec or class)."""
    return _input_table(settings or app_settings()).get(model_key) or None


def remember_inputs(model_key: str, exprs: list[str], settings: QSettings | None = None) -> None:
    settings = settings or app_settings()
    table = _input_table(settings)
    table.pop(model_key, None)
    table[model_key] = list(exprs)  # newest last: the oldest models are forgotten first
    settings.setValue("backward_inputs", json.dumps(dict(list(table.items())[-MAX_REMEMBERED_INPUTS:])))
