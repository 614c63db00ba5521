"""The test ledger: one JSON line per run on a model's test voice group (docs/data.md, "The test ledger").

The test group is reported, not used for choosing; the ledger shows how often it was looked at. Every
``edgetp finetune --kws`` run that adapts to a speaker of the model's recorded ``test_speakers``
appends one line (date, commit, model hash, weights hash, recipe, figures, speakers x seeds,
shots, command), and the model card counts the lines of the model's weights and lists the
figures that preceded the final one. Where the ledger lives:

- a model folder's ``model.npz`` (a shipped model, ``models/<name>/``): ``results/test-ledger.jsonl``;
- any other model file ``F.npz``: ``F.test-ledger.jsonl`` beside it;
- ``$EDGETP_TEST_LEDGER``, when set: that file instead (a test run that must not write into the repository);
- a model folder this user cannot write (an installed package):
  ``$EDGETP_HOME/test-ledgers/<folder>.test-ledger.jsonl``.

The card reads only the model folder's ledger, and says how many of its lines it counted: the ledger is
append-only, so a card rendered before a later run (a user's main job) stays valid, and re-rendering counts it.

A line counts for a model when it measured the same weights: its ``model_hash`` is one of
``Model.hashes()`` (the file, or one it was relabelled from) or its ``weights_hash`` is
``Model.weights_hash()`` (a file that differs only in recorded settings, e.g. another fine-tuning
recipe recorded with ``pretrain --from``). Lines reconstructed from the git history carry
``"backfilled": true`` and their ``source``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from edgetp.errors import EdgetpError
from edgetp.model import resolve_model_path
from edgetp.paths import portable

NAME = "test-ledger.jsonl"
ENV = "EDGETP_TEST_LEDGER"
FIGURES = ("query_before", "query_after", "others_before", "others_after")
REQUIRED = ("date", "model_hash", "recipe", "speakers", "seeds", "shots", *FIGURES)
TYPES = {
    "date": str,
    "model_hash": str,
    "recipe": dict,
    "speakers": list,
    "seeds": int,
    "shots": (int, str),
    **{k: (int, float) for k in FIGURES},
}
RECIPE = ("epochs", "lr", "optimizer", "batch", "targets", "train")  # what the card's label reads
_FROM_SUMMARY = {
    "query_before": "query_acc_before",
    "query_after": "query_acc_after",
    "others_before": "test_acc_before",
    "others_after": "test_acc_after",
}


def ledger_path(model_file) -> Path:
    """Where the ledger of model file ``model_file`` lives (the module docstring)."""
    f = Path(model_file)
    if f.name == "model.npz" and (f.parent / "results").is_dir():
        return f.parent / "results" / NAME
    return f.with_name(f.stem + "." + NAME)


def read(path) -> list[dict]:
    """The ledger's entries in order ([] when there is none); a malformed line is an EdgetpError naming the
    file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EdgetpError(f"{path}:{n}: not a test-ledger line (JSON: {exc.msg})") from None
        missing = [k for k in REQUIRED if not isinstance(e, dict) or k not in e]
        if missing:
            raise EdgetpError(f"{path}:{n}: not a test-ledger line (missing {', '.join(missing)})")
        bad = [k for k, t in TYPES.items() if not isinstance(e[k], t) or isinstance(e[k], bool)]
        bad += [f"recipe {k}" for k in RECIPE if isinstance(e["recipe"], dict) and k not in e["recipe"]]
        if bad:
            raise EdgetpError(f"{path}:{n}: not a test-ledger line (bad {', '.join(bad)})")
        out.append(e)
    return out


def of_model(entries: list[dict], model) -> list[dict]:
    """The entries that measured ``model``'s weights (the module docstring)."""
    hashes, weights = model.hashes(), model.weights_hash()
    return [e for e in entries if e.get("model_hash") in hashes or e.get("weights_hash") == weights]


def touches_test_group(model, speakers) -> bool:
    return bool(set(speakers) & set((model.recipe or {}).get("test_speakers") or ()))


def opened(model_arg, model, speakers) -> Path | None:
    """The ledger a run on ``speakers`` must append to (None when no speaker is in the model's test group),
    checked before the run: it must parse and be writable, so a long run never ends without its line."""
    if not touches_test_group(model, speakers):
        return None
    path = Path(os.environ.get(ENV) or ledger_path(resolve_model_path(str(model_arg))))
    if not os.environ.get(ENV) and path.parent.is_dir() and not os.access(path.parent, os.W_OK):
        # a model installed where this user cannot write (site-packages): the machine's own ledger of it
        from edgetp import paths

        path = paths.home() / "test-ledgers" / f"{path.parent.parent.name}.{NAME}"
        path.parent.mkdir(parents=True, exist_ok=True)
    read(path)
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        raise EdgetpError(
            f"{path}: cannot write the test ledger ({exc.strerror}); a run on the test group must be "
            "recorded: set EDGETP_TEST_LEDGER to a file you can write"
        ) from None
    return path


def commit() -> str | None:
    """The edgetp source's git commit (``+dirty`` with uncommitted changes to tracked files), None outside git."""
    src = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=src,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def command(argv=None) -> str:
    """The command line as typed, every absolute path made portable (a ledger is a shipped artefact)."""

    def one(a: str) -> str:
        k, eq, v = a.partition("=") if a.startswith("--") else ("", "", a)
        return f"{k}={portable(v)}" if eq else (portable(a) if a.startswith(("/", "~")) else a)

    return " ".join(["edgetp", *(one(a) for a in (sys.argv[1:] if argv is None else argv))])


def entry(out: dict, model, argv=None, results=None) -> dict:
    """One line from ``edgetp finetune``'s summary ``out`` (edgetp.kws.protocol.summarize)."""
    e = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
        "model": out.get("model"),
        "model_hash": model.hash(),
        "weights_hash": model.weights_hash(),
        "recipe": out["recipe"],
        "fixed": bool(out.get("fixed")),
        "speakers": out["speakers"],
        "seeds": out["seeds"],
        "runs": out["runs"],
        "shots": out["shots"],
        **{k: out[v] for k, v in _FROM_SUMMARY.items()},
        "query_after_std": out.get("query_acc_after_std"),
        "others": (out.get("others") or {}).get("split"),
        "command": command(argv),
    }
    e.update({k: out[k] for k in ("int_optimizer", "wbits", "hbits", "frozen_hidden", "row_scales") if k in out})
    if results:
        from edgetp.paths import portable

        e["results"] = portable(results)
    return e


def append(path, e: dict) -> int:
    """Append entry ``e``; returns how many lines of the ledger are now there."""
    path = Path(path)
    with path.open("a") as f:
        f.write(json.dumps(e, sort_keys=True) + "\n")
    return len(read(path))


def record(path, out: dict, model, argv=None, results=None) -> None:
    """The finetune hook: append the run to ``path`` (from ``opened``; nothing when None) and say so."""
    if path is None:
        return
    append(path, entry(out, model, argv, results))
    n = len(of_model(read(path), model))
    print(f"test ledger: measurement {n} of this model's test group, recorded in {portable(path)}")
