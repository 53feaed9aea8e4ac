"""The ``paramedit`` command: ``open`` (the GUI), ``inspect``, ``check``, ``apply``, ``--self-test``.

Bad input exits 2 with one paragraph on stderr and writes nothing; ``--verbose`` adds the
original traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paramedit import __version__

SUBCOMMANDS = ("open", "inspect", "check", "apply", "scan", "diff")

USAGE = """paramedit [-h] [--version] [--self-test] {open,inspect,check,apply,scan,diff} ...
       paramedit [MODEL_SPEC] [CHECKPOINT] [open options]   (no command: same as `open`)"""

EPILOG = """examples:
  paramedit                                  open the bundled demo in the window
  paramedit model.py:Net ckpt.pt             open a model and its checkpoint
  paramedit inspect ckpt.safetensors --json  list tensors, shapes and the load report
  paramedit check --model model.py:Net --checkpoint ckpt.pt --input 'randn(2, 5)'
  paramedit apply ckpt.pt edits.json -o edited.safetensors
  paramedit scan ckpt.pt                     find NaN, Inf, outliers, dead rows and where they are
  paramedit diff before.pt after.safetensors what changed between two checkpoints
  paramedit --self-test                      check this installation works, then exit

MODEL_SPEC is path/to/file.py:NAME or package.module:NAME (an nn.Module class or a function
returning one). A checkpoint is a .pt/.pth/.bin/.ckpt state dict, a .safetensors file, a
sharded *.safetensors.index.json or a Hugging Face save_pretrained folder. Pickles load with
weights_only=True unless you pass --trust. `paramedit COMMAND --help` shows each command's options.
"""

OPEN_EPILOG = """examples:
  paramedit open --demo                          the bundled demo model and checkpoint
  paramedit model.py:Net ckpt.pt --device cuda:0
                                                 open on the GPU (the word `open` is optional)
  paramedit ckpt.safetensors                     the tensors alone (no backward check)
  paramedit model.py:Net --model-kwargs '{"width": 8}'
                                                 freshly initialised weights
  paramedit --demo --screenshot shot.png         save a picture of the window and exit
"""

INSPECT_EPILOG = """examples:
  paramedit inspect ckpt.pt                      name, kind, dtype and shape of every tensor
  paramedit inspect ckpt.pt --model model.py:Net missing / unexpected / mismatched tensors
  paramedit inspect ckpt.ckpt --key ema --json   the weights under the 'ema' key, as JSON
"""

CHECK_EPILOG = """inputs: --input expressions first, else --input-shape tensors, else the model's own
example_inputs() function or example_input_array attribute, else (Hugging Face models) token
ids, attention mask, pixels or audio features of the sizes the config gives. Inputs are seeded,
so a check is repeatable. `--input name=EXPR` passes a keyword argument of forward.

exit status: 0 every trainable parameter got a finite gradient (a gradient that is exactly zero
everywhere is reported as ZERO and warned about; --strict makes it exit 1), 1 one did not,
2 bad input, or model tensors were not loaded from the checkpoint (--allow-missing checks anyway).

examples:
  paramedit check --model model.py:Net --input-shape 2,5
  paramedit check --model gpt.py:GPT --checkpoint ckpt.pt --input 'randint(1000, (1, 16))' --json
  paramedit check --model t5.py:make --input 'randint(100, (1, 8))' --input 'attention_mask=int(ones(1, 8))' \\
                  --input 'decoder_input_ids=randint(100, (1, 4))'
  paramedit check --model model.py:Net --checkpoint ckpt.pt --device cuda:0 --train --strict
"""

APPLY_EPILOG = """The edit log is the paramedit.edits JSON the window exports (File > Export Edit Log).
The result keeps the checkpoint's own layout: every tensor it had, under its own names and
prefixes, in its own dtypes, with the edits applied. With --model, a model that does not hold
the same tensors as the checkpoint is refused (exit 2) unless --allow-mismatch; --in-place
refuses files it cannot rewrite whole (TorchScript, a pickled model, a container with other
content such as a Lightning checkpoint's optimizer states): use -o OUT for those.

examples:
  paramedit apply ckpt.pt edits.json -o edited.safetensors
  paramedit apply model.safetensors edits.json --in-place
  paramedit apply ckpt.pt edits.json -o out.pt --model model.py:Net   edit through the model
"""


SCAN_EPILOG = """findings: nan, inf (errors), outlier, dead_row, dead_column (warnings), constant (info),
each with the region that holds it ([31337, 17], [777, :], [:, 5]; the first when there are more).
An outlier is a value more than 20 robust sigmas (1.4826 x the median absolute deviation) from
its tensor's median.

examples:
  paramedit scan model.safetensors
  paramedit scan ckpt.pt --only 'h.*.mlp.*' --json
  paramedit scan ckpt.pt --model model.py:Net
"""


DIFF_EPILOG = """per tensor: status (same, changed, only_a, only_b, shape, dtype), max |B - A|, relative
change ||B - A|| / ||A|| and the number of changed cells. A and B may be in different formats
(.pt against .safetensors, a folder against a file); prefixes and containers are resolved as
when opening.

examples:
  paramedit diff before.pt after.pt
  paramedit diff base.safetensors finetuned/ --atol 1e-6 --json
"""


def version_text() -> str:
    """``paramedit X.Y.Z (torch A.B.C, Python D.E.F)`` without importing torch (that takes seconds)."""
    import platform
    from importlib import metadata

    try:
        torch_version = f"torch {metadata.version('torch')}, "
    except metadata.PackageNotFoundError:  # a frozen app may ship torch without its metadata
        torch_version = ""
    return f"paramedit {__version__} ({torch_version}Python {platform.python_version()})"


def _common(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    if model:
        parser.add_argument("--model-kwargs", metavar="JSON", help="keyword arguments for the model, e.g. '{\"width\": 8}'")
    parser.add_argument("--trust", action="store_true",
                        help="load a pickled checkpoint that needs more than tensors (runs code from the file: "
                             "only for files you trust)")
    parser.add_argument("--key", dest="container_key", metavar="KEY",
                        help="which nested dict of the checkpoint holds the weights (e.g. ema)")
    parser.add_argument("--verbose", action="store_true", help="show the original traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="paramedit",
        usage=USAGE,
        description="Edit the parameters of PyTorch models in place, and prove gradients still flow.",
        epilog=EPILOG,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=version_text(),
                        help="print the versions of paramedit, torch and Python, then exit")
    parser.add_argument("--self-test", action="store_true",
                        help="open the demo offscreen, commit an edit, run the backward check; "
                             "print PASS and exit 0, or the reason and exit 1")
    sub = parser.add_subparsers(dest="command", metavar="{open,inspect,check,apply,scan,diff}", title="commands")

    p = sub.add_parser("open", prog="paramedit open", help="open the window (the default command)",
                       epilog=OPEN_EPILOG, formatter_class=raw,
                       description="Open a model and/or checkpoint in the window; with nothing, the bundled demo.")
    p.add_argument("model", nargs="?", metavar="MODEL_SPEC", help="file.py:NAME or package.module:NAME")
    p.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT", help="a checkpoint file or folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda:0, mps (default: cpu)")
    p.add_argument("--demo", action="store_true", help="open the bundled demo model and checkpoint")
    p.add_argument("--screenshot", metavar="PNG",
                   help="save a picture of the window after loading, then exit (works offscreen)")
    _common(p)
    parser.set_defaults(open_parser=p)

    p = sub.add_parser("inspect", prog="paramedit inspect",
                       help="list a checkpoint's tensors and how it fits a model",
                       epilog=INSPECT_EPILOG, formatter_class=raw,
                       description="List a checkpoint's tensors; with --model, also the load report.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint file or folder")
    p.add_argument("--model", metavar="SPEC", help="file.py:NAME or package.module:NAME to load the checkpoint into")
    p.add_argument("--json", action="store_true", help="print JSON: every tensor's name, kind, shape, dtype, device and aliases, and the load report")
    _common(p)

    p = sub.add_parser("check", prog="paramedit check",
                       help="run a backward pass and report which parameters got gradients",
                       epilog=CHECK_EPILOG, formatter_class=raw,
                       description="Run one forward and backward pass. Exit 0 when every trainable parameter\n"
                                   "received a finite gradient, 1 when one did not, 2 for bad input.")
    p.add_argument("--model", required=True, metavar="SPEC", help="file.py:NAME or package.module:NAME")
    p.add_argument("--checkpoint", metavar="CKPT", help="weights to load first (default: the model's own init)")
    p.add_argument("--input", dest="inputs", action="append", metavar="[NAME=]EXPR",
                   help="an input as a formula, e.g. 'randn(2, 5)' or 'randint(1000, (1, 16))'; repeat for more; "
                        "NAME=EXPR passes a keyword argument, e.g. 'attention_mask=int(ones(1, 16))'")
    p.add_argument("--input-shape", dest="input_shapes", action="append", metavar="SHAPE",
                   help="a standard-normal input of this shape, e.g. 2,5; repeat for more")
    p.add_argument("--device", default="cpu", help="cpu, cuda:0, mps (default: cpu)")
    p.add_argument("--reduction", choices=("sum", "mean"), default="sum",
                   help="loss = sum (default) or mean of every floating output")
    p.add_argument("--train", action="store_true", help="run in train mode (buffers are restored afterwards)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 also when a gradient is exactly zero everywhere (connected, but no signal)")
    p.add_argument("--allow-missing", action="store_true",
                   help="check even when model tensors were not loaded from the checkpoint (they keep random values)")
    p.add_argument("--json", action="store_true", help="print the per-parameter report as JSON")
    _common(p)

    p = sub.add_parser("apply", prog="paramedit apply", help="replay an edit log on a checkpoint and save the result",
                       epilog=APPLY_EPILOG, formatter_class=raw,
                       description="Replay a paramedit.edits log on a checkpoint and save the result;\n"
                                   "nothing is written if any edit fails.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the checkpoint to edit")
    p.add_argument("edits", metavar="EDITS.json", help="a paramedit.edits log (version 1)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", metavar="OUT", help="where to save (.safetensors or .pt)")
    out.add_argument("--in-place", action="store_true", help="overwrite CHECKPOINT (atomically)")
    p.add_argument("--model", metavar="SPEC",
                   help="file.py:NAME or package.module:NAME to load the checkpoint into first "
                        "(default: the checkpoint's tensors alone)")
    p.add_argument("--device", default="cpu", help="where the edits are computed (default: cpu)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="save even when the model and the checkpoint do not hold the same tensors (the file's own "
                        "tensors are written back unchanged)")
    p.add_argument("--add-missing", action="store_true",
                   help="also write the tensors the model has and the checkpoint lacks")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    _common(p)

    p = sub.add_parser("scan", prog="paramedit scan", help="find NaN, Inf, outliers, dead rows and columns",
                       epilog=SCAN_EPILOG, formatter_class=raw,
                       description="Read every value of every floating-point tensor once and report what is wrong,\n"
                                   "with where. Exit 1 when a NaN or Inf is found, else 0; 2 for bad input.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint file or folder")
    p.add_argument("--model", metavar="SPEC", help="scan the model's tensors as loaded from the checkpoint "
                                                   "(knows its embeddings' padding rows)")
    p.add_argument("--only", action="append", metavar="GLOB", help="scan only tensors matching GLOB (repeatable)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    _common(p)

    p = sub.add_parser("diff", prog="paramedit diff", help="compare two checkpoints tensor by tensor",
                       epilog=DIFF_EPILOG, formatter_class=raw,
                       description="Compare checkpoint B with checkpoint A, tensor by tensor. Exit 0 when they are\n"
                                   "identical (within --atol), 1 when they differ, 2 for bad input, like cmp.")
    p.add_argument("a", metavar="A", help="the reference checkpoint (file or folder)")
    p.add_argument("b", metavar="B", help="the checkpoint to compare with it")
    p.add_argument("--model", metavar="SPEC", help="load B into this model first (names as the model has them)")
    p.add_argument("--atol", type=float, default=0.0, metavar="X",
                   help="cells that differ by at most X count as the same (default 0: any difference)")
    p.add_argument("--all", action="store_true", help="also list the tensors that are the same")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    _common(p)
    return parser


def _open_session(args: argparse.Namespace, model: str | None, checkpoint: str | None):
    from paramedit.core.model.spec import parse_model_kwargs
    from paramedit.core.opening import open_session

    return open_session(model, checkpoint, device=getattr(args, "device", "cpu"),
                        model_kwargs=parse_model_kwargs(getattr(args, "model_kwargs", None)),
                        trust=args.trust, container_key=args.container_key)


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
    session = _open_session(args, args.model, args.checkpoint)
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


def cmd_check(args: argparse.Namespace) -> int:
    from paramedit.core.errors import ParameditError

    session = _open_session(args, args.model, args.checkpoint)
    not_loaded = _not_loaded(session)
    if not_loaded and not args.allow_missing:
        shown = ", ".join(not_loaded[:8]) + (f", … ({len(not_loaded) - 8} more)" if len(not_loaded) > 8 else "")
        raise ParameditError(
            f"{len(not_loaded)} model tensor(s) were not loaded from {args.checkpoint}, so the check would run on "
            f"random weights: {shown}. {session.report.summary()} Check a model that fits its checkpoint, or pass "
            "--allow-missing to check anyway."
        )
    report = session.run_backward(input_exprs=args.inputs, input_shapes=args.input_shapes,
                                  reduction=args.reduction, train_mode=args.train)
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
        print(f"loss {report.loss:.6g} on {report.device}: {report.verdict()}")
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
    session = _open_session(args, args.model, args.checkpoint)
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
    changed = {name: session.changed_count(name) for name in dict.fromkeys(c.name for c in checks)}
    if args.json:
        print(json.dumps({"output": str(saved), "edits": len(edits), "changed": changed,
                          "tensors_written": len(plan.tensors), "warnings": plan.warnings()}, indent=2))
    else:
        total = sum(changed.values())
        print(f"applied {len(edits)} edits ({total} elements changed in {len(changed)} tensors); saved {saved}")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    session = _open_session(args, args.model, args.checkpoint)
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
    session = _open_session(args, args.model, args.b)
    report = session.compare(args.a, atol=args.atol, trust=args.trust, container_key=args.container_key)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for t in report.tensors:
            if args.all or t.status != "same":
                print(f"  {t.describe()}")
        print(report.summary())
    return 0 if report.identical else 1


def cmd_open(args: argparse.Namespace) -> int:
    from paramedit.core.errors import ParameditError

    try:
        from paramedit.qt.app import request_from_args, run_app
    except ImportError as exc:
        raise ParameditError(f"the window cannot start: {exc}") from exc
    # A mistyped command ("paramedit inspcet x.pt") or path fails here, not in a window that
    # may never be seen (a remote shell, a script).
    request = request_from_args(args)
    commands = ", ".join(COMMANDS)
    if isinstance(request.model, str) and ":" not in request.model:
        raise ParameditError(f"{request.model!r} is neither a command ({commands}) nor a model spec "
                             "(file.py:NAME or package.module:NAME); see 'paramedit --help'")
    if request.checkpoint and not Path(request.checkpoint).expanduser().exists():
        raise ParameditError(f"{request.checkpoint!r} is neither a checkpoint file or folder that exists nor a "
                             f"command ({commands}); see 'paramedit --help'")
    return run_app(args)


COMMANDS = {"open": cmd_open, "inspect": cmd_inspect, "check": cmd_check, "apply": cmd_apply, "scan": cmd_scan,
            "diff": cmd_diff}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version", "--self-test")):
        argv.insert(0, "open")
    parser = build_parser()
    if argv[0] == "open":
        # Options between the model spec and the checkpoint ("paramedit SPEC --model-kwargs '{}' CKPT")
        # need intermixed parsing, which argparse offers for a parser without subcommands only.
        open_parser = parser.get_default("open_parser")
        args = open_parser.parse_intermixed_args(argv[1:], argparse.Namespace(command="open", self_test=False))
    else:
        args = parser.parse_args(argv)
    if args.self_test:
        if args.command is not None:
            parser.error("--self-test takes no command")
        from paramedit.self_test import run_self_test

        return run_self_test()
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        # `paramedit inspect x.pt | head`: the reader left; that is not an error.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        from paramedit.core.errors import ParameditError

        if not isinstance(exc, ParameditError):
            import traceback

            message = f"unexpected {type(exc).__name__}: {exc}"
            details = traceback.format_exc()
        else:
            message, details = exc.message, exc.details
        print(f"paramedit {args.command}: error: {message}", file=sys.stderr)
        if args.verbose and details:
            print(details, file=sys.stderr)
        elif details:
            print("(run with --verbose for the full traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
