"""The `edgetp` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``func(args) -> int``. A user mistake raises :class:`edgetp.errors.EdgetpError` and
is printed as one line (exit status 2); nothing the user can cause ends in a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from edgetp import __version__
from edgetp.errors import EdgetpError

# Order is the order of `edgetp --help`. A module missing here is a bug, not an option.
COMMAND_MODULES = [
    "conformance",
    "bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgetp",
        description="Traces Propagation: on-device learning for spiking keyword spotters.",
    )
    parser.add_argument("--version", action="version", version=f"edgetp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"edgetp.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgetpError as exc:
        print(f"edgetp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgetp: interrupted", file=sys.stderr)
        return 130
