"""The ``paramedit`` command: ``open`` (the GUI), ``inspect``, ``check``, ``apply``, ``scan``, ``diff``,
``--self-test``.

Bad input exits 2 with one paragraph on stderr and writes nothing; ``--verbose`` adds the
original traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

from paramedit.cli.commands import cmd_apply, cmd_check, cmd_inspect, cmd_open
from paramedit.cli.parser import SUBCOMMANDS, build_parser
from paramedit.cli.whole_model import cmd_diff, cmd_probe, cmd_scan

COMMANDS = {"open": cmd_open, "inspect": cmd_inspect, "check": cmd_check, "apply": cmd_apply, "scan": cmd_scan,
            "diff": cmd_diff, "probe": cmd_probe}


@contextlib.contextmanager
def _stdout_kept_for_output() -> Iterator[None]:
    """The command's own output goes to the real stdout; anything else written to file descriptor 1
    (a C extension, a subprocess, ``sys.__stdout__`` in model code) goes to stderr, so ``--json``
    stdout is one JSON document. Python-level prints of model code are sent to stderr by core.

    Only when stdout is the process's own (not a test's capture).
    """
    try:
        real = sys.stdout is sys.__stdout__ and sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    ours = os.fdopen(saved, "w", encoding=sys.stdout.encoding, errors=sys.stdout.errors, closefd=False)
    previous = sys.stdout
    sys.stdout = ours
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            ours.flush()
        sys.stdout = previous
        os.dup2(saved, 1)
        os.close(saved)


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
        with contextlib.nullcontext() if args.command == "open" else _stdout_kept_for_output():
            return COMMANDS[args.command](args)
    except BrokenPipeError:
        # `paramedit inspect x.pt | head`: the reader left; that is not an error.
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
