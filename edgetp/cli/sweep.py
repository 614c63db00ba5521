"""`edgetp sweep --kws`: search fine-tuning recipes on development speakers with Ray Tune (edgetp.kws.sweep)."""

from __future__ import annotations

import json
from pathlib import Path

from edgetp.cli._options import add_model_option, add_seen_speaker_option, command
from edgetp.errors import EdgetpError


def register(sub):
    p = command(
        sub,
        "sweep",
        """search fine-tuning recipes on development speakers (Ray Tune, ASHA)

        Each trial is the model's fine-tuning recipe with the --space fields replaced, run over the development speakers
        x seeds; every trial is written to --json. The test group is refused: a sweep chooses.
        """,
    )
    p.add_argument("--kws", action="store_true", required=True, help="keyword spotting")
    add_model_option(p)
    p.add_argument(
        "--data-root",
        help="GSC-layout corpus (the development group is in the wide protocol corpus: "
        "edgetp data synth-kws DIR --distinct 10 --wide 200)",
    )
    p.add_argument("--speaker", default="dev", help="'dev' (default: the model's development group) or ids")
    add_seen_speaker_option(p, "sweep on speakers the model was pretrained on (refused by default; the JSON says so)")
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="a recipe field and its values (repeatable): lr, epochs, optimizer, batch, rehearsal, ...",
    )
    p.add_argument(
        "--samples", type=int, help="random search: this many trials drawn from the values (default: the whole grid)"
    )
    p.add_argument("--no-asha", dest="asha", action="store_false", help="run every trial over every cell")
    p.add_argument("--grace", type=int, default=2, help="cells every trial runs before ASHA may stop it (2)")
    p.add_argument("--shots", default="5", help="shots per word (default 5)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per speaker (default 1)")
    p.add_argument("--fixed", action="store_true", help="the integer rule (what the device runs)")
    p.add_argument("--test-limit", type=int, default=2000, help="at most this many other-speaker utterances")
    p.add_argument("--seed", type=int, default=0, help="random search's seed")
    p.add_argument("--workers", type=int, metavar="N", help="a local Ray with N CPUs (default: the machine's cores)")
    p.add_argument("--ray", metavar="ADDRESS", help="an existing Ray cluster: auto or ray://HOST:PORT")
    p.add_argument("--json", metavar="PATH", required=True, help="every trial's recipe and figures")
    p.set_defaults(func=run)


def run(args) -> int:
    from edgetp.cli.finetune import _shots, recorded_recipe
    from edgetp.kws.data import check_speaker, corpus_for
    from edgetp.kws.speakers import others_split, outside_test_group
    from edgetp.kws.sweep import METRIC, parse_space, recipes, run_sweep
    from edgetp.model import load_model
    from edgetp.paths import portable

    space = parse_space(args.space)
    shots = _shots(args.shots)
    if args.seeds < 1 or (args.samples is not None and args.samples < 1) or args.grace < 1:
        raise EdgetpError("--seeds, --samples and --grace must be >= 1")
    model = load_model(args.model)
    corpus = corpus_for(model, args.data_root)
    speakers = outside_test_group(
        model, corpus, args.speaker, "a sweep chooses, and the test group is never used for choosing"
    )
    seen = check_speaker(model, corpus, speakers, args.allow_seen_speaker, args.model)
    others = others_split(model, speakers)  # the development rows' other speakers (validation list)
    base = recorded_recipe(model, args.fixed)
    recipes(base, space)  # every trial's recipe checked before Ray starts
    out = run_sweep(
        model,
        corpus,
        speakers,
        args.seeds,
        shots,
        base,
        space,
        args.fixed,
        args.test_limit or None,
        args.samples,
        args.asha,
        args.grace,
        args.seed,
        args.workers,
        args.ray,
        others=others,
    )
    out.update(
        model=portable(args.model),
        model_hash=model.hash(),
        speakers=speakers,
        seeds=args.seeds,
        shots=shots,
        fixed=bool(args.fixed),
        base_recipe=base.to_dict(),
        space=space,
        metric=METRIC,
        scheduler="asha" if args.asha else None,
        others=others,
        **seen,
    )
    Path(args.json).write_text(json.dumps(out, indent=1))
    for t in sorted(out["trials"], key=lambda t: -t.get(METRIC, -1)):
        figs = (
            f"query {t['query_acc_before']:.1f} -> {t[METRIC]:.1f} %, others' loss {t['forgetting']:.1f} pp"
            if METRIC in t
            else "no figures"
        )
        state = " (stopped by ASHA)" if t["stopped_early"] else f" (ERROR {t['error']})" if "error" in t else ""
        print(f"{json.dumps(t['config'])}: {figs} over {t['cells']}/{out['cells_per_trial']} cells{state}")
    b = out["best"]
    print(f"best: {json.dumps(b['config'])} ({b[METRIC]:.1f} %)" if b else "no trial completed")
    print(f"wrote {args.json} ({len(out['trials'])} trials, {out['seconds']:.0f} s on {out['ray_cpus']} CPUs)")
    return 0 if b else 1
