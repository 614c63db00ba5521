"""Options several commands share, declared once (a module starting with '_' is not a command)."""

from __future__ import annotations

import inspect

DEFAULT_MODEL = "kws-mcu"  # the on-device default (models/kws-mcu/README.md)


def command(sub, name: str, doc: str):
    """The parser of command ``name``, documented by ``doc`` as a docstring is: its first paragraph is the one-line
    help of the commands' list, the rest the description ``--help`` shows (argparse refills both)."""
    help, _, description = inspect.cleandoc(doc).partition("\n\n")
    return sub.add_parser(name, help=" ".join(help.split()), description=description)


def add_model_option(parser, default: str = DEFAULT_MODEL) -> None:
    """``--model NAME|PATH``: a shipped model by name or a model file."""
    parser.add_argument("--model", default=default, help=f"shipped model name or model file (default {default})")


def add_seen_speaker_option(parser, help: str) -> None:
    """``--allow-seen-speaker``: accept speakers the model was pretrained on (``help``: what the command then does)."""
    parser.add_argument("--allow-seen-speaker", action="store_true", help=help)


def build_image(cdir, args, root, **flash):
    """The firmware image of the exported C in ``cdir`` for the options --target, --locked, --opt and --stack,
    built in ``root``/build with --build-dir, else in the build cache; ``flash``: the weight store's page geometry."""
    from deploy.build import build

    build_dir = root / "build" if args.build_dir else None
    return build(cdir, args.target, build_dir, locked=args.locked, opt=args.opt, stack_size=args.stack, **flash)
