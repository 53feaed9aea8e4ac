"""The commands that read the whole model: ``scan`` and ``diff``."""

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
