"""``open_session``: model spec and/or checkpoint in, a ready :class:`Session` out."""

from __future__ import annotations

import json
import shlex
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paramedit.core.checkpoints.formats import LoadedCheckpoint, load_checkpoint
from paramedit.core.errors import ModelSpecError, ParameditError
from paramedit.core.model.devices import move_model, parse_device
from paramedit.core.model.empty_build import capture_output, model_output_to_stderr
from paramedit.core.model.hf_folder import FolderArchitecture, folder_architecture, stored_dtype
from paramedit.core.model.load_report import (
    LoadReport,
    assign_into_meta_model,
    load_into_model,
    meta_build_problem,
)
from paramedit.core.model.spec import build_model, model_example_inputs
from paramedit.core.session import Session
from paramedit.core.tensor_store import TensorStore
from paramedit.core.tensor_tree import model_tensors


def _parameter_dtype(dtype: str | None, ckpt: LoadedCheckpoint | None) -> torch.dtype | None:
    """The dtype parameters are given before the tensors are attached (None: as the model built them)."""
    if dtype is None or dtype == "model":
        return None
    if dtype == "file":
        return stored_dtype(ckpt) if ckpt is not None else None
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ModelSpecError(f"--dtype {dtype!r} is not one of file, model, float32, bfloat16, float16, float64")
    return resolved


def _cast_empty_parameters(model: nn.Module, dtype: torch.dtype) -> None:
    """Give a model's (meta, empty) floating parameters ``dtype``: free, nothing is allocated."""
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point() and p.dtype != dtype:
                p.data = p.data.to(dtype)


def _build_and_load(
    model: str | nn.Module | Callable[[], nn.Module], model_kwargs: dict[str, Any] | None,
    ckpt: LoadedCheckpoint | None, dtype: str | None = None,
) -> tuple[nn.Module, LoadReport | None]:
    """Build the model and put the checkpoint in it, constructing it once when the model allows.

    A spec with a checkpoint is built with empty (``meta``) parameters and the checkpoint's
    memory-mapped tensors are attached as they are: no initialisation, no copy. Only when that
    cannot give every tensor a value (the checkpoint lacks some, or the constructor needs its
    parameters' values) is the model built again, for real, and the checkpoint copied in; what
    the discarded build printed is not shown, so model output appears once.
    """
    report: LoadReport | None = None
    why_built = ""
    if ckpt is not None and not isinstance(model, nn.Module):
        with capture_output() as captured:
            try:
                empty = build_model(model, model_kwargs, empty_parameters=True)
            except ModelSpecError as exc:
                empty, why_built = None, f"its constructor cannot run with empty parameters ({exc.message[:160]})"
        if empty is not None:
            wanted = _parameter_dtype(dtype, ckpt)
            if wanted is not None:
                _cast_empty_parameters(empty, wanted)
            _, _, aliases = model_tensors(empty)
            why_built = meta_build_problem(empty, ckpt.tensors, aliases) or ""
            report = None if why_built else assign_into_meta_model(empty, ckpt.tensors, aliases)
            if report is not None:
                captured.replay()
                report.notes[:0] = list(ckpt.notes)
                return empty, report
        del captured
    net = build_model(model, model_kwargs)
    if ckpt is not None:
        _, _, aliases = model_tensors(net)
        report = load_into_model(net, ckpt.tensors, aliases)
        report.notes[:0] = list(ckpt.notes)
        if why_built:
            report.notes.append(f"built the model with its own initial values and copied the checkpoint in, "
                                f"because {why_built}")
    return net, report


def architecture_hint(ckpt: LoadedCheckpoint) -> str | None:
    """For a Hugging Face folder opened as tensors alone: how to open it with its architecture."""
    config_path = ckpt.metadata.get("paramedit.config_json")
    if ckpt.format != "hf-folder" or not config_path:
        return None
    try:
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    names = config.get("architectures") if isinstance(config, dict) else None
    if not names or not isinstance(names[0], str):
        return None
    folder = shlex.quote(str(ckpt.path))
    kwargs = shlex.quote(json.dumps({"pretrained_model_name_or_path": str(ckpt.path)}))
    return (f"opened as tensors alone, as asked; {Path(config_path).name} names the architecture {names[0]}: "
            f"open it without --tensors-only to build it, or with its class as the spec: paramedit "
            f"transformers:{names[0]}.from_pretrained --model-kwargs {kwargs} {folder}")


def open_session(
    model: str | nn.Module | None = None,
    checkpoint: str | Path | None = None,
    *,
    device: str = "cpu",
    model_kwargs: dict[str, Any] | None = None,
    trust: bool = False,
    container_key: str | None = None,
    architecture: bool = True,
    trust_remote_code: bool = False,
    dtype: str | None = None,
) -> Session:
    """Open a model (spec or ``nn.Module``) and/or a checkpoint.

    A Hugging Face folder with a ``config.json`` is a model by itself: without a model, the
    architecture its config names is built (``architecture=False`` opens its tensors alone;
    code shipped with the folder runs only with ``trust_remote_code``). With only any other
    checkpoint the session is "tensors only": view, edit and save work; the backward check says
    it needs a model. With a model, the checkpoint's tensors become the model's own parameters
    and buffers and :attr:`Session.report` says what did not fit. ``dtype``: "file" gives the
    model's parameters the dtype the checkpoint stores (no conversion, no copy; the default for a
    Hugging Face folder's own architecture), "model" (the default for a spec) keeps the dtype its
    constructor chose, or a dtype name ("float32", "bfloat16", ...); a conversion that copies is
    said, with its size, in the report.
    """
    if model is None and checkpoint is None:
        raise ParameditError("nothing to open: give a model spec, a checkpoint, or both")
    dev = parse_device(device)
    ckpt = load_checkpoint(checkpoint, trust=trust, container_key=container_key) if checkpoint is not None else None
    if model is None and ckpt is not None and architecture:
        factory, why_not = folder_architecture(ckpt, trust_remote_code=trust_remote_code)
        if factory is not None:
            model = factory
        elif why_not:
            ckpt.notes.append(why_not)
    if model is None:
        assert ckpt is not None
        hint = architecture_hint(ckpt) if not architecture else None
        if hint:
            ckpt.notes.append(hint)
        store = TensorStore.from_tensors(ckpt.tensors, ckpt.aliases)
        session = Session(store, checkpoint=ckpt)
        if dev.type != "cpu":
            session.to(dev)
        return session

    net, report = _build_and_load(model, model_kwargs, ckpt, dtype)
    if report is not None and isinstance(model, FolderArchitecture):
        report.notes.insert(len(ckpt.notes) if ckpt is not None else 0, f"built {model.describe()}")
    store = TensorStore.from_model(net)
    try:
        with model_output_to_stderr():
            example = model_example_inputs(net, model if isinstance(model, str) else None)
    except Exception as exc:
        raise ModelSpecError(
            f"the model's example_inputs()/example_input_array raised {type(exc).__name__}: {exc}",
            details=traceback.format_exc(),
        ) from exc
    move_model(net, dev)
    store.device = dev
    return Session(store, model=net, checkpoint=ckpt, report=report,
                   spec=model if isinstance(model, str) else None, example_inputs=example)
