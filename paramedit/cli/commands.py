"""The commands that open one model or checkpoint: ``inspect``, ``check``, ``apply``, ``open``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def open_session_from_args(args: argparse.Namespace, model: str | None, checkpoint: str | None):
    from paramedit.core.model.spec import parse_model_kwargs
    from paramedit.core.opening import open_session

    return open_session(model, checkpoint, device=getattr(args, "device", "cpu"),
                        model_kwargs=parse_model_kwargs(getattr(args, "model_kwargs", None)),
                        trust=args.trust, container_key=args.container_key,
                        architecture=not getattr(args, "tensors_only", False),
                        trust_remote_code=getattr(args, "trust_remote_code", False),
                        dtype=getattr(args, "dtype", None))


def _inspect_json(session) -> dict[str, Any]:
    ckpt = session.checkpoint
    report = session.report.as_json() if session.report else {"missing": [], "unexpected": [], "mismatched": []}
    return {
        "checkpoint": str(ckpt.path) if ckpt else None,
        "format": ckpt.format if ckpt else None,
        "container_key": ckpt.container_key if ckpt else None,
        "stripped_prefix": ckpt.stripped_prefix if ckpt else None,
        "tensors": [info.as_json() for info in session.infos().values()],
        "skipped": dict(ckpt.skipped) if ckpt else {},
        "notes": list(ckpt.notes) if ckpt else [],
        "report": report,
    }


def cmd_inspect(args: argparse.Namespace) -> int:
    session = open_session_from_args(args, args.model, args.checkpoint)
    data = _inspect_json(session)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{data['checkpoint']}  ({data['format']}"
          + (f", key {data['container_key']!r}" if data["container_key"] else "") + ")")
    for note in data["notes"]:
        print(f"  note: {note}")
    width = max((len(t["name"]) for t in data["tensors"]), default=4)
    for t in data["tensors"]:
        flags = (" frozen" if t["kind"] == "parameter" and not t["requires_grad"] else "")
        tied = f"  tied: {', '.join(t['aliases'])}" if t["aliases"] else ""
        print(f"  {t['name']:<{width}}  {t['kind']:<9}  {t['dtype']:<9} {t['shape']}{flags}{tied}")
    for name, reason in data["skipped"].items():
        print(f"  skipped {name}: {reason}")
    if session.report is not None:
        print(session.report.summary())
        for note in session.report.notes:  # e.g. "stripped prefix 'model.' from checkpoint keys"
            if note not in data["notes"]:
                print(f"  note: {note}")
    return 0


def _not_loaded(session) -> list[str]:
    """Model tensors that did not get the checkpoint's values (missing, or another shape)."""
    report = session.report
    if report is None or session.checkpoint is None:
        return []
    return list(report.missing) + [name for name, _, _ in report.mismatched]


def _validate_inputs(args: argparse.Namespace) -> None:
    from paramedit.core.editing.expressions import parse_expression
    from paramedit.core.errors import ParameditError
    from paramedit.core.model.inputs import parse_shape, split_keyword

    for text in args.inputs or []:
        _name, expr = split_keyword(text)
        try:
            parse_expression(expr)
        except ParameditError as exc:
            raise ParameditError(f"--input {text!r}: {exc.message}") from exc
    for text in args.input_shapes or []:
        parse_shape(text)


def cmd_check(args: argparse.Namespace) -> int:
    from paramedit.core.errors import ParameditError

    if not args.model and not args.checkpoint:
        raise ParameditError("check needs a model: --model SPEC, or --checkpoint FOLDER for a Hugging Face folder "
                             "whose config.json names its architecture")
    _validate_inputs(args)  # before a load that may take minutes
    session = open_session_from_args(args, args.model, args.checkpoint)
    if session.model is None:
        notes = " ".join(session.checkpoint.notes[-1:]) if session.checkpoint is not None else ""
        raise ParameditError(f"check needs a model, and {args.checkpoint} opened as tensors alone. {notes} "
                             "Name one with --model SPEC.")
    not_loaded = _not_loaded(session)
    if not_loaded and not args.allow_missing:
        shown = ", ".join(not_loaded[:8]) + (f", … ({len(not_loaded) - 8} more)" if len(not_loaded) > 8 else "")
        raise ParameditError(
            f"{len(not_loaded)} model tensor(s) were not loaded from {args.checkpoint}, so the check would run on "
            f"random weights: {shown}. {session.report.summary()} Check a model that fits its checkpoint, or pass "
            "--allow-missing to check anyway."
        )
    report = session.run_backward(input_exprs=args.inputs, input_shapes=args.input_shapes,
                                  reduction=args.reduction, train_mode=args.train, only=args.only, loss=args.loss,
                                  check_memory=args.memory_check)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        if session.report is not None and not session.report.clean:
            print(session.report.summary(), file=sys.stderr)
        width = max((len(p.name) for p in report.params), default=4)
        for p in report.params:
            status = ("frozen" if not p.requires_grad else "NO GRAD" if not p.has_grad else
                      "NOT FINITE" if not p.finite else "ZERO" if p.zero else "ok")
            norm = f"{p.grad_norm:.4g}" if p.grad_norm is not None else "-"
            print(f"  {p.name:<{width}}  {status:<10} grad norm {norm}")
        print(f"loss {report.loss:.6g} ({report.objective}) on {report.device}: {report.verdict()}")
    if report.zero_grad and report.ok:
        print(f"paramedit check: warning: {len(report.zero_grad)} gradient(s) are exactly zero"
              + (" (--strict: exit 1)" if args.strict else " (--strict makes this exit 1)"), file=sys.stderr)
    if not report.ok:
        return 1
    return 1 if args.strict and report.zero_grad else 0


def cmd_apply(args: argparse.Namespace) -> int:
    from paramedit.core.editing.edits import read_edit_log
    from paramedit.core.errors import ParameditError

    edits = read_edit_log(args.edits)
    session = open_session_from_args(args, args.model, args.checkpoint)
    ckpt = session.checkpoint
    out_path = Path(args.checkpoint) if args.in_place else Path(args.output)
    checks = session.apply_edits(edits)  # in memory: nothing is written yet
    plan = session.plan_save(out_path, add_missing=args.add_missing)
    if plan.refusal:
        raise ParameditError(f"nothing was written: {plan.refusal}")
    if args.in_place and not plan.in_place:
        raise ParameditError(f"--in-place cannot tell which file of {args.checkpoint!r} to rewrite; nothing was "
                             "written. Use -o OUT.")
    if not plan.fits and not args.allow_mismatch:
        raise ParameditError(
            f"the model does not fit {ckpt.path if ckpt else args.checkpoint}, so nothing was written: "
            + "; ".join(plan.mismatch)
            + (f"; edits to {', '.join(plan.lost_edits[:6])} would not be saved" if plan.lost_edits else "")
            + ". Check the model spec, or pass --allow-mismatch to save the file's own tensors with the edits "
              "that land on them (and --add-missing to add the model's extra tensors)."
        )
    for warning in plan.warnings():
        print(f"paramedit apply: warning: {warning}", file=sys.stderr)
    saved = session.save(out_path, add_missing=args.add_missing)
    changed = {name: session.changed_count(name) for name in dict.fromkeys(c.name for c in checks)
               if name not in plan.lost_edits}
    if args.json:
        print(json.dumps({"output": str(saved), "edits": len(edits), "changed": changed,
                          "tensors_written": len(plan.tensors), "warnings": plan.warnings()}, indent=2))
    else:
        total = sum(changed.values())
        print(f"applied {len(edits)} edits ({total} elements changed in {len(changed)} tensors); saved {saved}")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    from paramedit.core.errors import ParameditError

    try:
        from paramedit.qt.app import request_from_args, run_app
    except ImportError as exc:
        raise ParameditError(f"the window cannot start: {exc}") from exc
    # A mistyped command ("paramedit inspcet x.pt") or path fails here, not in a window that
    # may never be seen (a remote shell, a script).
    request = request_from_args(args)
    from paramedit.cli.parser import SUBCOMMANDS

    commands = ", ".join(SUBCOMMANDS)
    if isinstance(request.model, str) and ":" not in request.model:
        raise ParameditError(f"{request.model!r} is neither a command ({commands}) nor a model spec "
                             "(file.py:NAME or package.module:NAME); see 'paramedit --help'")
    if request.checkpoint and not Path(request.checkpoint).expanduser().exists():
        raise ParameditError(f"{request.checkpoint!r} is neither a checkpoint file or folder that exists nor a "
                             f"command ({commands}); see 'paramedit --help'")
    return run_app(args)
