"""Where the bundled demo model and checkpoint are, found through importlib.resources."""

from __future__ import annotations

from functools import reduce
from importlib import resources
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """A file shipped under ``resources/`` (installed as ``paramedit.resources``)."""
    # One joinpath per part: a MultiplexedPath (Python 3.10/3.11) takes a single argument.
    return Path(str(reduce(lambda p, part: p.joinpath(part), parts, resources.files("paramedit.resources"))))


def demo_model_spec() -> str:
    return f"{resource_path('demo', 'demo_model.py')}:DemoNet"


def demo_checkpoint() -> Path:
    return resource_path("demo", "demo.safetensors")
