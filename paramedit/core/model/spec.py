"""Turning a model spec (``file.py:NAME`` / ``package.module:NAME``) into an ``nn.Module``.

Importing a model file runs its code: that is the user's explicit request when they name it,
and the reason the GUI asks before importing a file it has not opened before.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paramedit.core.errors import ModelSpecError
from paramedit.core.model.empty_build import model_output_to_stderr, parameters_on_meta


def split_spec(spec: str) -> tuple[str, str]:
    """Split ``"path/to/file.py:Net"`` into its module part and its attribute name."""
    module_part, sep, name = spec.rpartition(":")
    # A Windows drive letter ("C:\\x.py") has a colon too; the NAME part never has a path separator.
    if not sep or not module_part or not name or "/" in name or "\\" in name:
        raise ModelSpecError(
            f"model spec {spec!r} is not of the form 'file.py:NAME' or 'package.module:NAME'"
        )
    return module_part, name.strip()


def parse_model_kwargs(text: str | None) -> dict[str, Any]:
    """Parse ``--model-kwargs`` JSON into a dict; an error names the bad JSON."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelSpecError(f"--model-kwargs is not valid JSON ({exc.msg} at position {exc.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise ModelSpecError(f"--model-kwargs must be a JSON object such as '{{\"width\": 8}}', not {text!r}")
    return value


def _import_file(path: Path, spec: str):
    if not path.is_file():
        raise ModelSpecError(f"model spec {spec!r}: file {str(path)!r} does not exist")
    # A unique module name per file keeps two 'model.py' files from shadowing each other.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"paramedit_user_model_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    import_spec = importlib.util.spec_from_file_location(module_name, path)
    if import_spec is None or import_spec.loader is None:
        raise ModelSpecError(f"model spec {spec!r}: {str(path)!r} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(import_spec)
    sys.modules[module_name] = module
    # Let the model file import its neighbours (common in research code).
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        import_spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ModelSpecError(
            f"model spec {spec!r}: importing {str(path)!r} raised {type(exc).__name__}: {exc}",
            details=traceback.format_exc(),
        ) from exc
    finally:
        if added:
            sys.path.remove(folder)
    return module


def _import_module(dotted: str, spec: str):
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        raise ModelSpecError(
            f"model spec {spec!r}: no module named {exc.name!r} (is the package installed, "
            f"or did you mean a file path ending in .py?)",
            details=traceback.format_exc(),
        ) from exc
    except Exception as exc:
        raise ModelSpecError(
            f"model spec {spec!r}: importing {dotted!r} raised {type(exc).__name__}: {exc}",
            details=traceback.format_exc(),
        ) from exc


def resolve_spec(spec: str):
    """Import the spec's module and return the named attribute (a class or factory)."""
    module_part, name = split_spec(spec)
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        module = _import_file(Path(module_part).expanduser(), spec)
    else:
        module = _import_module(module_part, spec)
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            # Names only: getattr on every name of a lazy package (transformers) imports all of it.
            available = sorted(n for n in dir(target) if not n.startswith("_"))
            close = difflib.get_close_matches(part, available, n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            if not close and len(available) <= 12:
                hint = f"; names there: {', '.join(available) or 'none'}"
            raise ModelSpecError(f"model spec {spec!r}: {module_part!r} has no attribute {name!r}{hint}")
        target = getattr(target, part)
    return target


def build_model(
    spec: str | nn.Module | Callable[..., nn.Module], kwargs: dict[str, Any] | None = None, *,
    empty_parameters: bool = False,
) -> nn.Module:
    """Return the ``nn.Module`` a spec names, constructed with ``kwargs``.

    ``spec`` may already be an ``nn.Module`` instance (from Python), returned as it is, or a
    factory to call (a class or function; a Hugging Face folder's architecture). With
    ``empty_parameters`` every parameter is moved to ``meta`` as the constructor registers it
    (no memory, no initialisation), while buffers are computed for real; the module file itself
    is imported normally first. Whatever model code prints goes to stderr.
    """
    if isinstance(spec, nn.Module):
        if kwargs:
            raise ModelSpecError("model kwargs were given, but the model is already an nn.Module instance")
        return spec
    if isinstance(spec, str):
        with model_output_to_stderr():
            factory = resolve_spec(spec)
    elif callable(spec):
        factory = spec
        spec = describe_spec(spec)
    else:
        raise ModelSpecError(f"a model must be a spec string, an nn.Module or a factory, not {type(spec).__name__}")
    if isinstance(factory, nn.Module):
        if kwargs:
            raise ModelSpecError(f"model spec {spec!r} names a module instance; it takes no kwargs")
        return factory
    if not callable(factory):
        raise ModelSpecError(f"model spec {spec!r} names a {type(factory).__name__}, not a class or factory")
    try:
        with model_output_to_stderr(), parameters_on_meta() if empty_parameters else contextlib.nullcontext():
            model = factory(**(kwargs or {}))
    except (Exception, SystemExit) as exc:  # sys.exit()/argparse in model code must not end the app
        raise ModelSpecError(
            f"model spec {spec!r}: calling it with {kwargs or {}} raised {type(exc).__name__}: {exc}"
            + _call_hint(spec, factory, kwargs, exc),
            details=traceback.format_exc(),
        ) from exc
    if not isinstance(model, nn.Module):
        raise ModelSpecError(
            f"model spec {spec!r} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def describe_spec(spec: object) -> str:
    """A model source in words: the spec string, or what a factory says it builds."""
    if isinstance(spec, str):
        return spec
    describe = getattr(spec, "describe", None)
    if callable(describe):
        return str(describe())
    return getattr(spec, "__qualname__", type(spec).__name__)


def _call_hint(spec: str, factory: Any, kwargs: dict[str, Any] | None, exc: BaseException) -> str:
    """How to call it instead, when that can be told: ``from_pretrained`` needs the folder."""
    if getattr(factory, "__name__", "") == "from_pretrained" and not kwargs:
        return ("; from_pretrained needs the folder (or hub name) to load: --model-kwargs "
                "'{\"pretrained_model_name_or_path\": \"path/to/folder\"}' (model_kwargs= in Python)")
    if isinstance(exc, TypeError) and "argument" in str(exc):
        try:
            params = [p for p in inspect.signature(factory).parameters.values()
                      if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                      and p.name not in (kwargs or {})]
        except (TypeError, ValueError):
            return ""
        if params:
            example = ", ".join(f'\"{p.name}\": ...' for p in params[:4])
            return f"; it needs {', '.join(p.name for p in params)}: --model-kwargs '{{{example}}}'"
    return ""


def model_example_inputs(model: nn.Module, spec: str | nn.Module | None) -> tuple | None:
    """The model's own example input, from ``example_inputs()`` or ``example_input_array``.

    ``example_inputs`` may be a function in the model's file (next to NAME) or a method of the model.
    """
    hook = getattr(model, "example_inputs", None)
    if hook is None and isinstance(spec, str):
        module_part, _ = split_spec(spec)
        if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
            module = _import_file(Path(module_part).expanduser(), spec)
        else:
            module = sys.modules.get(module_part)
        hook = getattr(module, "example_inputs", None) if module is not None else None
    if callable(hook):
        # Seeded, without disturbing the caller's random state: a check is repeatable run to run.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            value = hook()
        return value if isinstance(value, tuple) else (value,)
    array = getattr(model, "example_input_array", None)
    if array is not None:
        return array if isinstance(array, tuple) else (array,)
    return None
