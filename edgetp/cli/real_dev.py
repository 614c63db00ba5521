"""`edgetp real-dev`: a model's development figures on real speech, the model card's real-speech section.

    edgetp real-dev --model M --real DIR [--fixed] [--view DIR] [--shots 1,3,5,all] [--seeds 3] [--workers N] --json F

Zero-shot top-1 over the real folder's clips (the speakers that trained the model left out), then 1 / 3 / 5-shot
and whole-pool personalisation of its adaptation speakers with the model's recorded fine-tuning recipe, others =
the choose speakers (edgetp.kws.real_dev). The shipped models' files are ``models/<name>/results/real-dev.json``
(models/rebuild.sh real-dev). Development figures: never a run on the test voice group, never a test-ledger line.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgetp.cli._options import add_model_option, command
from edgetp.errors import EdgetpError


def register(sub):
    from edgetp.kws.real_dev import SEEDS, SHOTS

    p = command(
        sub,
        "real-dev",
        """a model's development figures on real speech (zero-shot, 1/3/5/all-shot personalisation) for its card

        Measures zero-shot top-1 over a folder of real clips in GSC layout and the personalisation of its adaptation
        speakers (>= 4 clips of each core word) with the model's recorded fine-tuning recipe; writes the model card's
        results file. Every speaker is a development speaker (used for choosing).
        """,
    )
    add_model_option(p)
    p.add_argument("--real", required=True, help="real clips in GSC layout (e.g. ../shared/audio/gsc-real-dev)")
    p.add_argument("--view", help="its development view (made or reused here; default $EDGETP_HOME/real-dev)")
    p.add_argument("--fixed", action="store_true", help="the integer rule and network the device runs")
    p.add_argument("--shots", default=",".join(map(str, SHOTS)), help="shots per word, comma-separated (%(default)s)")
    p.add_argument("--seeds", type=int, default=SEEDS, help="support sets drawn per speaker (%(default)s)")
    p.add_argument("--workers", type=int, metavar="N", help="run the cells on a local Ray with N CPUs (same figures)")
    p.add_argument(
        "--json", required=True, metavar="F", help="results file (a model card's: models/<name>/results/real-dev.json)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _shots(text: str) -> tuple:
    from edgetp.cli.finetune import _shots as one

    try:
        return tuple(one(x) for x in text.split(","))
    except EdgetpError:
        raise EdgetpError(f"--shots must be positive integers or 'all' joined by commas, got {text!r}") from None


def run(args) -> int:
    from edgetp import paths
    from edgetp.kws.ledger import command, commit
    from edgetp.kws.real_dev import measure
    from edgetp.model import load_model

    shots = _shots(args.shots)
    if args.seeds < 1:
        raise EdgetpError("--seeds must be >= 1")
    if not Path(args.real).expanduser().is_dir():
        raise EdgetpError(
            f"--real {args.real}: not a folder (the real development clips, docs/data.md \"Real speech\")"
        )
    model = load_model(args.model)
    view = Path(args.view).expanduser() if args.view else paths.home() / "real-dev"
    line = lambda r: print(
        f"  {r['speaker']} seed {r['seed']}: query {r['query_acc_before']:.1f} -> "
        f"{r['query_acc_after']:.1f} %, others {r['test_acc_before']:.1f} -> "
        f"{r['test_acc_after']:.1f} % ({r['seconds']:.1f} s)",
        flush=True,
    )
    from edgetp.cli.finetune import recorded_recipe

    out = measure(
        model,
        args.real,
        view,
        args.fixed,
        recorded_recipe(model, args.fixed),
        shots,
        args.seeds,
        args.workers,
        progress=not args.quiet,
        on_cell=line,
        say=lambda s: print(s, flush=True),
    )
    out = {"model": paths.portable(args.model), **out, "command": command(), "commit": commit()}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {paths.portable(args.json)} ({out['seconds']:.0f} s)")
    return 0
