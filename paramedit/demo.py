"""Where the bundled demo model and checkpoint are, found through importlib.resources."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """A file shipped under ``resources/`` (installed as ``paramedit.resources``)."""
    return Path(str(resources.files("paramedit.resources").joinpath(*parts)))


def demo_model_spec() -> str:
    return f"{resource_path('demo', 'demo_model.py')}:DemoNet"


def demo_checkpoint() -> Path:
    return resource_path("demo", "demo.safetensors")
