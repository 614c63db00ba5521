"""Settings as data: a dataclass declares each setting once (type, default, choices, range, help), and this
module turns it into argparse options, reads recipe files (JSON, or TOML on Python >= 3.11) and ``--set KEY=VALUE``
items, and checks every value against the declaration: an unknown key, a wrong type or an out-of-range value is an
EdgetpError naming the key and where it came from.

A leaf module (standard library only): the command-line parsers import it when they are built.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import typing
from pathlib import Path
import argparse

from edgetp.errors import EdgetpError


def setting(
    default,
    help: str = "",
    *,
    choices=None,
    lo=None,
    hi=None,
    lo_open: bool = False,
    hi_open: bool = False,
    removed=None,
):
    """A dataclass field with what a parser and a recipe file need to know of it. ``lo``/``hi``: the allowed
    range (inclusive unless ``lo_open``/``hi_open``); None is always allowed for an Optional field. ``removed``:
    former choices -> why they are gone (a recipe that still names one is told so)."""
    meta = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "lo": lo,
        "hi": hi,
        "lo_open": lo_open,
        "hi_open": hi_open,
        "removed": dict(removed or {}),
    }
    return dataclasses.field(default=default, metadata=meta)


def fields(cls) -> dict:
    """name -> (base type, optional, metadata) for each field of the settings dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        t, optional = hints[f.name], False
        args = typing.get_args(t)
        if args and type(None) in args:  # X | None
            optional = True
            t = next(a for a in args if a is not type(None))
        out[f.name] = (t, optional, f.metadata)
    return out


def check_value(cls, key: str, value, where: str):
    """``value`` for field ``key`` of ``cls``, checked (an int is accepted for a float field and converted)."""
    t, optional, meta = fields(cls)[key]
    what = f"{where}: {key}"
    if value is None:
        if optional:
            return None
        raise EdgetpError(f"{what} must be a {t.__name__}, got none")
    ok = (
        isinstance(value, bool)
        if t is bool
        else isinstance(value, (int, float)) and not isinstance(value, bool)
        if t is float
        else isinstance(value, int) and not isinstance(value, bool)
        if t is int
        else isinstance(value, t)
    )
    if not ok:
        raise EdgetpError(f"{what} must be a {t.__name__}, got {value!r}")
    if t is float:
        value = float(value)
        if not math.isfinite(value):
            raise EdgetpError(f"{what} must be a finite number, got {value!r}")
    if value in meta.get("removed", {}):
        raise EdgetpError(f"{what} {value!r}: {meta['removed'][value]}")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise EdgetpError(f"{what} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
        raise EdgetpError(f"{what} must be {'>' if meta.get('lo_open') else '>='} {lo:g}, got {value!r}")
    if hi is not None and (value >= hi if meta.get("hi_open") else value > hi):
        raise EdgetpError(f"{what} must be {'<' if meta.get('hi_open') else '<='} {hi:g}, got {value!r}")
    return value


def parse_text(cls, key: str, text: str, where: str):
    """A ``--set KEY=VALUE`` value: the text typed as field ``key`` of ``cls`` declares, then checked."""
    t, optional, _meta = fields(cls)[key]
    if optional and text.lower() == "none":
        return None
    if t is bool:
        low = text.lower()
        if low not in ("true", "false", "1", "0"):
            raise EdgetpError(f"{where}: {key} must be true or false, got {text!r}")
        return low in ("true", "1")
    try:
        value = t(text)
    except ValueError:
        raise EdgetpError(f"{where}: {key} must be a {t.__name__}, got {text!r}") from None
    return check_value(cls, key, value, where)


def load_file(path) -> dict:
    """A recipe file's table: ``.json``, or ``.toml`` (Python >= 3.11: tomllib)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise EdgetpError(f"{path}: cannot read the recipe file ({e.strerror or e})") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info < (3, 11):
            raise EdgetpError(f"{path}: TOML recipe files need Python >= 3.11 (tomllib); write the recipe as JSON")
        import tomllib

        try:
            data = tomllib.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise EdgetpError(f"{path}: not a TOML recipe ({e})") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as e:
            raise EdgetpError(f"{path}: not a JSON recipe ({e})") from None
    else:
        raise EdgetpError(f"{path}: a recipe file is .json or .toml")
    if not isinstance(data, dict):
        raise EdgetpError(f"{path}: a recipe file holds one table of KEY = VALUE settings")
    return data


def owner(classes, key: str):
    """The class of ``classes`` that declares ``key`` (None: none does)."""
    return next((c for c in classes if key in fields(c)), None)


def read(classes, recipe_file=None, items=(), where_set: str = "--set", only=None) -> dict:
    """The settings a recipe file and ``--set KEY=VALUE`` items give (the items win), checked against the
    dataclasses ``classes`` (only the fields in ``only``, when given); keys neither names are left out (their
    defaults apply)."""
    known = sorted(k for c in classes for k in fields(c) if only is None or k in only)

    def unknown(key, where):
        return EdgetpError(f"{where}: unknown setting {key!r}; the settings are {', '.join(known)}")

    out = {}
    if recipe_file is not None:
        for key, value in load_file(recipe_file).items():
            c = owner(classes, key) if key in known else None
            if c is None:
                raise unknown(key, recipe_file)
            out[key] = check_value(c, key, value, str(recipe_file))
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise EdgetpError(f"{where_set} {item!r}: expected KEY=VALUE")
        c = owner(classes, key) if key in known else None
        if c is None:
            raise unknown(key, f"{where_set} {item}")
        out[key] = parse_text(c, key, text.strip(), f"{where_set} {item}")
    return out


def add_options(group, cls, names=None) -> None:
    """One ``--name`` option per field of ``cls`` (or those in ``names``): its type, choices and help from the
    declaration; default None (the caller layers defaults: the model's recipe, then the field's default)."""
    for name, (t, _optional, meta) in fields(cls).items():
        if names is not None and name not in names:
            continue
        flag = "--" + name.replace("_", "-")
        default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
        helptext = (meta.get("help", "") + ("" if default is None else f" (default {default})")).replace("%", "%%")
        if t is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        else:
            group.add_argument(
                flag,
                type=t,
                choices=meta.get("choices"),
                default=None,
                help=helptext,
                metavar=None if meta.get("choices") else name.upper(),
            )


def add_recipe_options(parser, what: str, example: str) -> None:
    """``--recipe FILE`` and ``--set KEY=VALUE`` of a command whose settings are data (``read`` reads them):
    ``what`` says which settings a file holds, ``example`` is one KEY=VALUE."""
    parser.add_argument(
        "--recipe",
        metavar="FILE",
        help="a recipe file (.json, or .toml on Python >= 3.11) of KEY: VALUE settings" + what,
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"one recipe setting for this run (repeatable; overrides --recipe), e.g. --set {example}",
    )


def moved_flags(keys, extra=None) -> dict:
    """--flag -> recipe key for the flags that became recipe settings (``extra``: other spellings, e.g.
    no_recover -> recover), so that the CLI says where such a flag went."""
    out = {"--" + k.replace("_", "-"): k for k in keys}
    out.update({"--" + k.replace("_", "-"): v for k, v in (extra or {}).items()})
    return out


def moved_message(flag: str, key: str) -> str:
    """What a removed flag says: where its recipe setting went (``key``), or its new name (``key`` a --flag)."""
    if key.startswith("--"):
        return f"{flag} is now {key} (the same KEY=VALUE items)"
    return (
        f"{flag} moved to the recipe file: --recipe F with {{\"{key}\": ...}} (JSON; or TOML: {key} = ...), "
        f"or --set {key}=VALUE for one run"
    )


def help_keys(classes, only=None) -> str:
    """The settings of ``classes`` with their defaults, for a --recipe option's help."""
    parts = []
    for c in classes:
        for f in dataclasses.fields(c):
            if only is not None and f.name not in only:
                continue
            parts.append(f.name if f.default is None else f"{f.name} ({f.default})")
    return ", ".join(parts)
