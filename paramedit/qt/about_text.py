"""Help > About: the versions a bug report needs."""

from __future__ import annotations

import platform

import pyqtgraph
import PySide6
import torch
from PySide6.QtCore import qVersion

from paramedit import __version__
from paramedit.core.model.devices import available_devices, device_label
from paramedit.core.session import Session


def about_html(session: Session | None) -> str:
    device = str(session.device) if session is not None else "no model open"
    rows = [
        ("paramedit", __version__),
        ("PyTorch", torch.__version__),
        ("Qt / PySide6", f"{qVersion()} / {PySide6.__version__}"),
        ("pyqtgraph", pyqtgraph.__version__),
        ("Python", platform.python_version()),
        ("Model device", device),
        ("Devices here", ", ".join(device_label(d) for d in available_devices())),
    ]
    table = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
    return ("<p>Edit the parameters of PyTorch models in place, and prove gradients still flow.</p>"
            f"<table>{table}</table>")
