"""The `edgetp` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``func(args) -> int``. A user mistake raises :class:`edgetp.errors.EdgetpError` and
is printed as one line (exit status 2); nothing the user can cause ends in a traceback.
The line is ``ERROR <message>``; a bad file's message is ``<file>: <why>``, so the line is
``ERROR <file>: <why>``, as `predict` and `conformance` print for each file they refuse.
Mistakes in the command line itself (unknown option, missing argument, a value of the
wrong type) are argparse's: usage, then ``edgetp …: error: …``, exit status 2; a flag that moved into
a recipe file (a command's ``moved`` default: flag -> recipe key) is one ``ERROR`` line saying where.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from edgetp import __version__
from edgetp.errors import EdgetpError

# Every module of this package with a ``register`` function is a sub-command; this
# list only fixes the order of `edgetp --help` (others follow alphabetically).
ORDER = ["finetune", "pretrain", "data", "conformance", "bench", "export", "import_model", "verify_c", "hil"]


def command_modules() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgetp",
        description="Traces Propagation: on-device learning for spiking keyword spotters.",
    )
    parser.add_argument("--version", action="version", version=f"edgetp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        mod = importlib.import_module(f"edgetp.cli.{name}")
        if hasattr(mod, "register"):
            mod.register(sub)
    return parser


def moved_flag(rest: list[str], moved: dict) -> str | None:
    """The first of ``rest`` (argparse's unrecognised arguments) that is a flag moved into a recipe file."""
    for tok in rest:
        flag = tok.split("=", 1)[0]
        if flag in moved:
            from edgetp.settings import moved_message

            return moved_message(flag, moved[flag])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:  # a flag that became a recipe setting says where it went; anything else is argparse's error
        msg = moved_flag(rest, getattr(args, "moved", None) or {})
        if msg:
            print(f"ERROR {msg}", file=sys.stderr)
            return 2
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from edgetp.threads import single_threaded_blas

    try:
        with single_threaded_blas():  # the command's thread settings, where it starts
            return int(args.func(args) or 0)
    except EdgetpError as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgetp: interrupted", file=sys.stderr)
        return 130
