"""Options several commands share, declared once (a module starting with '_' is not a command)."""

from __future__ import annotations

DEFAULT_MODEL = "kws-mcu"  # the on-device default (models/kws-mcu/README.md)


def add_model_option(parser, default: str = DEFAULT_MODEL) -> None:
    """``--model NAME|PATH``: a shipped model by name or a model file."""
    parser.add_argument("--model", default=default, help=f"shipped model name or model file (default {default})")
