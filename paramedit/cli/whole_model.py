"""The commands that read the whole model: ``scan``, ``diff`` and ``probe``."""

from __future__ import annotations

import argparse
import json

from paramedit.cli.commands import open_session_from_args


def cmd_scan(args: argparse.Namespace) -> int:
    session = open_session_from_args(args, args.model, args.checkpoint)
    report = session.scan(args.only)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for finding in report.findings:
            print(f"  {finding.describe()}")
        for name, reason in report.skipped.items():
            if "only floating-point" not in reason:
                print(f"  not scanned: {name} ({reason})")
        print(report.summary())
    return 1 if report.has_errors else 0


def cmd_diff(args: argparse.Namespace) -> int:
    session = open_session_from_args(args, args.model, args.b)
    report = session.compare(args.a, atol=args.atol, trust=args.trust, container_key=args.container_key)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for t in report.tensors:
            if args.all or t.status != "same":
                print(f"  {t.describe()}")
        print(report.summary())
    return 0 if report.identical else 1


def _probe_model_and_checkpoint(args: argparse.Namespace) -> tuple[str | None, str | None]:
    model, checkpoint = args.model, args.checkpoint
    for value in (args.spec, args.checkpoint_pos):
        if value is None:
            continue
        module, sep, name = value.rpartition(":")
        is_spec = bool(sep and module and name and "/" not in name)
        if is_spec and model is None:
            model = value
        elif checkpoint is None:
            checkpoint = value
        else:
            model = model or value
    return model, checkpoint


def _input_text(args: argparse.Namespace, session) -> str:
    if args.prompt is not None:
        return args.prompt
    if args.inputs:
        return "; ".join(args.inputs)
    if session.example_inputs is not None:
        return "the model's example input"
    from paramedit.core.model.inputs import huggingface_input_exprs

    exprs = huggingface_input_exprs(session.model) if session.model is not None else None
    return "; ".join(exprs) if exprs else "the model's default input"


def _print_probe(label: str, result) -> None:
    print(f"{label}: output {list(result.shape)}")
    if result.classes:
        for i, row in enumerate(result.top_k):
            items = ", ".join(f"{r['label']!r}" if r["label"] is not None else str(r["index"]) for r in row)
            probs = ", ".join(f"{r['prob']:.3f}" for r in row)
            print(f"  sample {i}: {items}  ({probs})")
    else:
        print("  " + ", ".join(f"{k} {v:.4g}" for k, v in result.stats.items()))
    for i, text in enumerate(result.generated or []):
        print(f"  continuation {i}: {text!r}")


def cmd_probe(args: argparse.Namespace) -> int:
    from paramedit.core.editing.edits import read_edit_log
    from paramedit.core.errors import ParameditError

    model, checkpoint = _probe_model_and_checkpoint(args)
    if model is None and checkpoint is None:
        raise ParameditError("probe needs a model: MODEL_SPEC, --model SPEC, or a Hugging Face folder")
    edits = read_edit_log(args.edits) if args.edits else None  # bad input before a long load
    session = open_session_from_args(args, model, checkpoint)
    if session.model is None:
        raise ParameditError(f"probe needs a model, and {checkpoint} opened as tensors alone; name one with --model")
    before = session.probe(top_k=args.top_k, input_exprs=args.inputs, prompt=args.prompt, generate=args.generate)
    data = {"input": _input_text(args, session), "before": before.to_json()}
    after = None
    if edits is not None:
        session.apply_edits(edits)
        after = session.probe(before.inputs, top_k=args.top_k, generate=args.generate)
        data["after"] = after.to_json()
        data["change"] = after.compare(before).to_json()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"input: {data['input']}")
    _print_probe("before", before)
    if after is not None:
        _print_probe("after", after)
        print(f"change: {after.compare(before).describe()}")
    return 0
