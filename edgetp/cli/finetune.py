"""`edgetp finetune --kws`: the paper's speaker adaptation with TP (float, or --fixed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgetp.cli._options import add_model_option, command
from edgetp.errors import EdgetpError
from edgetp.settings import fields, moved_flags


def _shots(text: str):
    if text == "all":
        return "all"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise EdgetpError(f"--shots must be a positive integer or 'all', got {text!r}")
    return n


def register(sub):
    from edgetp.kws.train import FINETUNE_FIELDS, Recipe
    from edgetp.kws.run_settings import FinetuneRun
    from edgetp.settings import add_recipe_options, help_keys

    p = command(
        sub,
        "finetune",
        """personalise a pretrained keyword spotter to one speaker with TP

        Loads a pretrained model, holds out --speaker, fine-tunes on --shots utterances per word with TP and reports
        query accuracy before/after, a from-scratch baseline and the other speakers' accuracy before/after. The
        fine-tuning recipe is the model's recorded one (its card's "default fine-tuning"); a --recipe file and --set
        items override its fields.
        """,
    )
    p.add_argument("--kws", action="store_true", required=True, help="keyword spotting (the only task so far)")
    add_model_option(p)
    p.add_argument("--data-root", help="GSC-layout corpus (default: the offline corpus set-up generated)")
    p.add_argument(
        "--speaker",
        help="held-out speaker(s): an id, ids joined by commas, 'test' or 'dev' (the "
        "model's test / development voice group), or 'real' (the real adaptation speakers of the "
        "shipped real clips, edgetp/data/gsc_real, or of the real development view --data-root "
        "names; development figures). Default: 'real', then the model's test group when it records "
        "one and the corpus has it (mean ± std over speakers × seeds), else the speaker it was "
        "pretrained without",
    )
    p.add_argument(
        "--shots",
        default=None,
        help="1, 5, ... or all (default 5; 3 for the real speakers, whose support pools hold 3-4 clips of a word)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="repeats with a resampled support set (default 3 for one speaker, 1 per speaker for a "
        "voice group, to keep the default run short)",
    )
    p.add_argument(
        "--fixed",
        action="store_true",
        help="use the integer-only TP rule as the device runs it: batch 1, no rehearsal, no "
        "augmentation, the device's update rules; other settings are refused",
    )
    add_recipe_options(
        p,
        " that override the model's recorded fine-tuning recipe and the run's defaults: "
        + help_keys((Recipe, FinetuneRun), FINETUNE_FIELDS + tuple(fields(FinetuneRun))),
        "epochs=0",
    )
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a figure (accuracy per epoch, before/after, confusion)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(
        func=run, moved=moved_flags(FINETUNE_FIELDS + tuple(fields(FinetuneRun)), {"no_baseline": "baseline"})
    )


def settings_given(args) -> dict:
    """The recipe settings the --recipe file and --set items give (checked), read once per run."""
    if getattr(args, "given", None) is None:
        from edgetp.kws.run_settings import FinetuneRun
        from edgetp.kws.train import FINETUNE_FIELDS, Recipe
        from edgetp.settings import read

        args.given = read(
            (Recipe, FinetuneRun),
            getattr(args, "recipe", None),
            getattr(args, "set", ()) or (),
            only=FINETUNE_FIELDS + tuple(fields(FinetuneRun)),
        )
    return args.given


def apply_run_settings(args) -> None:
    """The run settings (FinetuneRun) onto ``args``: the recipe's value, else the declared default."""
    from edgetp.kws.run_settings import FinetuneRun

    given, d = settings_given(args), FinetuneRun()
    for k in fields(FinetuneRun):
        setattr(args, k, given.get(k, getattr(d, k)))


def recorded_recipe(model, fixed: bool = False):
    """The model's recorded fine-tuning recipe (what `finetune` runs without a recipe file), as ``--fixed`` would
    run it when ``fixed``."""
    import argparse

    return recipe_from(argparse.Namespace(fixed=fixed, given={}), model)


def recipe_from(args, model):
    """The fine-tuning Recipe: the declared defaults, then the model's recorded recipe, then the --recipe file and
    --set items (``settings_given``); with --fixed what the device runs, or an EdgetpError naming the setting."""
    from edgetp.kws.train import AUGMENT, FINETUNE_FIELDS, Recipe

    given = {k: v for k, v in settings_given(args).items() if k in FINETUNE_FIELDS}
    typed = [k for k in AUGMENT if given.get(k)]
    if args.fixed and typed:
        raise EdgetpError(
            f"{', '.join(typed)} with --fixed: the integer rule (and the device) learns from the "
            "utterances as recorded; augmentation is for the float rule"
        )
    ft = dict(model.recipe.get("finetune", {}))
    if args.fixed:  # a recipe's augmentation, batches and rehearsal are the float recipe's; the device has none
        ft = {k: v for k, v in ft.items() if k not in AUGMENT + HOST_ONLY}
    frozen = args.fixed and device_frozen(model)
    d = Recipe()  # the defaults, declared once
    pick = lambda k: given[k] if k in given else ft.get(k, "readout" if k == "train" and frozen else getattr(d, k))
    r = Recipe(**{k: pick(k) for k in FINETUNE_FIELDS})
    r.check()
    if args.fixed:
        check_device(r, frozen, given.get("optimizer"))
    return r


HOST_ONLY = ("batch", "rehearsal")  # recipe fields of the float rule that no device setting matches


def device_frozen(model) -> bool:
    """Whether the device runs ``model`` with its hidden layers frozen in flash (its recipe["fixed"])."""
    from firmware_gen.qmodel import quant_settings

    return bool(model.recipe.get("fixed")) and quant_settings(model)[0]["frozen_hidden"]


def check_device(r, frozen: bool, optimizer) -> None:
    """`--fixed` claims the device's arithmetic, so it runs only what the firmware runs (firmware_gen,
    deploy): one utterance per call to etp_train_step (batch 1), no store of other speakers' utterances
    (no rehearsal), the update rules of its contract, a frozen hidden layer that cannot learn, an
    update_every in its uint32 step counter and learning-rate codes that SET_LR accepts. Anything else
    is an EdgetpError naming the option."""
    from edgetp.tp.schedule import epoch_lrs
    from edgetp.fixed.update_q import lr_code
    from edgetp.fixed.device import DeviceConfig, STEPS_MAX

    if r.batch != 1:
        raise EdgetpError(f"batch {r.batch} with --fixed: the device learns from one utterance at a time (batch 1)")
    if r.rehearsal:
        raise EdgetpError(
            f"rehearsal {r.rehearsal:g} with --fixed: the device keeps no other speakers' "
            "utterances to rehearse (rehearsal 0)"
        )
    if optimizer == "adam":
        raise EdgetpError(
            "optimizer adam with --fixed: the device has no Adam; its rules are colnorm (what "
            "--fixed runs for a recipe's adam), rownorm and sgd"
        )
    if frozen and r.train != "readout":
        raise EdgetpError(
            f"train {r.train} with --fixed: the model's device keeps its hidden layers frozen in "
            'flash (recipe["fixed"]) and learns its readout only (train readout)'
        )
    if r.update_every > STEPS_MAX:
        raise EdgetpError(
            f"update_every {r.update_every} with --fixed: the device counts steps in a uint32 (at most {STEPS_MAX})"
        )
    dev = DeviceConfig(r.targets, "colnorm", r.lr, train=r.train, update_every=r.update_every, frozen_hidden=frozen)
    bad = [x for x in epoch_lrs(r.lr, r.epochs) if not dev.lr_in_range(*lr_code(x))]
    if bad:
        raise EdgetpError(f"lr {r.lr:g} with --fixed: the device's learning-rate code (SET_LR) cannot hold {bad[0]:g}")


REAL = "real"  # --speaker real: a real development view's adaptation speakers (default: the shipped clips)


def run(args) -> int:
    """The README's main job (no --speaker, no --data-root): the shipped real speakers first, then the model's
    synthetic test group; --json / --plot / --save then belong to the test group's row, which holds the real
    row under "real_speakers"."""
    apply_run_settings(args)
    if args.speaker is not None or args.data_root is not None:
        return _row(args)[0]
    from argparse import Namespace

    print("== real speakers (shipped clips, edgetp/data/gsc_real; development figures) ==", flush=True)
    code, real = _row(
        Namespace(**{**vars(args), "speaker": REAL, "json": None, "plot": None, "save": None, "others": None})
    )
    print("\n== the model's synthetic test voices ==", flush=True)
    code2, _ = _row(args, {"real_speakers": real})
    return code or code2


def _real_row(args, model, recipe):
    """(corpus, speakers, recipe, note) of --speaker real: the view --data-root names (default the shipped
    one), its adaptation speakers that did not train the model; others = its choose part (testing list)."""
    from edgetp.data.real import SHIPPED
    from edgetp.kws.data import corpus_for
    from edgetp.kws.real_dev import adapt_speakers, trained_real, view_info, without_rehearsal

    if args.others not in (None, "testing"):
        raise EdgetpError(
            "others with --speaker real: the other speakers are the view's choose part (its testing list)"
        )
    root = Path(args.data_root).expanduser() if args.data_root else SHIPPED
    parts = view_info(root)["speakers"]
    corpus = corpus_for(model, root)
    speakers = adapt_speakers(model, parts, trained_real(model, set(corpus.speaker_counts())), root)
    recipe, note = without_rehearsal(recipe)
    return corpus, speakers, recipe, note


def _row(args, extra: dict | None = None) -> tuple[int, dict]:
    from edgetp.kws.data import check_speaker, corpus_for, seen_note
    from edgetp.kws.grid import GridJob, run_grid
    from edgetp.kws.protocol import summarize
    from edgetp.model import load_model, save_model
    from edgetp.paths import portable

    real = args.speaker == REAL
    shots = _shots(args.shots or ("3" if real else "5"))
    if args.save and args.fixed:  # refused before the grid runs, not after
        raise EdgetpError("save with --fixed: save the integer model with edgetp export (not a float model)")
    if args.frontend != "float" and not args.fixed:
        raise EdgetpError(f"frontend {args.frontend} needs --fixed: the integer frontend feeds the integer rule")
    if args.seeds is not None and args.seeds < 1:
        raise EdgetpError("--seeds must be >= 1")
    model = load_model(args.model)
    recipe = recipe_from(args, model)
    recipe_note = None
    if real:
        corpus, speakers, recipe, recipe_note = _real_row(args, model, recipe)
        others = "testing"
    else:
        corpus = corpus_for(model, args.data_root)
        from edgetp.kws.speakers import others_split, resolve

        speakers = resolve(model, corpus, args.speaker)
        others = others_split(model, speakers, args.others)
    from edgetp.kws.ledger import opened, record

    book = opened(args.model, model, speakers)  # a run on the test group: its ledger, checked before the run
    if args.seeds is None:
        args.seeds = 3 if len(speakers) == 1 else 1
    if args.baseline is None:
        args.baseline = len(speakers) == 1
    seen = check_speaker(model, corpus, speakers, args.allow_seen_speaker, args.model)
    note = seen_note(seen, speakers)
    if note:
        print(f"warning: {note}", flush=True)
    if recipe_note:
        print(f"note: {recipe_note}", flush=True)
    limit = args.test_limit or None

    def line(r):
        who = r['speaker'] + ' ' if len(speakers) > 1 else ''
        print(
            f"{who}seed {r['seed']}: query zero-shot {r['query_acc_before']:.1f} -> adapted "
            f"{r['query_acc_after']:.1f} %  "
            f"others {r['test_acc_before']:.1f} -> {r['test_acc_after']:.1f} %"
            + (f"  from scratch {r['finetune_only_acc']:.1f} %" if "finetune_only_acc" in r else "")
            + f"  ({r['support']} support"
            + (f" + {r['rehearsal']} rehearsal" if r.get("rehearsal") else "")
            + f", {r['query']} query, {r['seconds']:.1f} s)",
            flush=True,
        )

    job = GridJob(model, corpus, shots, recipe, args.fixed, limit, args.baseline, args.frontend, others)
    grid = run_grid(
        job,
        speakers,
        args.seeds,
        args.workers,
        args.ray,
        progress=not args.quiet,
        keep_first=bool(args.save),
        on_cell=line,
    )
    per_seed = grid.per_seed
    if not per_seed:
        raise EdgetpError(f"every cell failed; the first: {grid.failed[0]['error']}")
    finished = [s for s in speakers if any(r["speaker"] == s for r in per_seed)]  # failed cells: "failed_cells"
    out = summarize(per_seed, finished, shots, recipe, portable(args.model))
    out["grid"] = {
        "cells": len(per_seed) + len(grid.failed),
        "seconds": grid.seconds,
        **({"ray_cpus": grid.workers, **grid.overhead} if grid.workers else {}),
    }
    if grid.failed:
        out["failed_cells"] = grid.failed
    out["model_hash"] = model.hash()  # the model cards flag rows measured on another model file
    out["fixed"] = bool(args.fixed)
    out["frontend"] = args.frontend
    out.update(seen)
    if note:
        out["note"] = note
    if real:
        out["development"] = "real speakers used for choosing: development figures"
        out["data_root"] = portable(str(corpus.root))
    if recipe_note:
        out["recipe_note"] = recipe_note
    out.update(extra or {})
    if args.fixed:
        out.update(
            {
                k: per_seed[0][k]
                for k in ("int_optimizer", "wbits", "hbits", "frozen_hidden", "row_scales")
                if k in per_seed[0]
            }
        )
    _table(out)
    record(book, out, model, results=args.json)
    if note:
        print(f"note: {note}")
    if args.save:
        first = per_seed[0].get("params")
        if first is None:
            raise EdgetpError(f"save: the first cell ({speakers[0]} seed 0) failed, nothing to save")
        from dataclasses import replace

        tuned = replace(
            model, params=first, recipe=dict(model.recipe, finetuned_on=speakers[0], finetune=recipe.to_dict())
        )
        save_model(tuned, args.save)
        print(f"saved the fine-tuned model (seed 0) to {args.save}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if args.plot:
        from edgetp.kws.report import plot_finetune

        plot_finetune(out, model.labels, args.plot)
        print(f"wrote {args.plot}")
    for f in grid.failed:  # the figures above are over the cells that finished
        print(f"FAILED cell {f['speaker']} seed {f['seed']}: {f['error']}", file=sys.stderr)
    return (1 if grid.failed else 0), out


def _table(out: dict) -> None:
    from edgetp.kws.train import augment_words

    aug = augment_words(out["recipe"])
    pm = lambda k: f"{out[k]:6.2f} ± {out[k + '_std']:.2f}" if k in out else "   n/a"
    r = out["recipe"]
    opt = f"integer {out['int_optimizer']}" if out.get("fixed") else r["optimizer"]
    who = (
        f"speaker {out['speaker']}"
        if len(out["speakers"]) == 1
        else f"{len(out['speakers'])} speakers ({out['speaker']}; mean ± std over speakers × seeds)"
    )
    print(
        f"\n{who}, {out['shots']} shots, {out['seeds']} seeds, "
        f"{opt} lr {r['lr']:g}, batch {r['batch']}, targets {r['targets']}, train {r['train']}, "
        f"{r['epochs']} epochs"
        + (f", rehearsal {r['rehearsal']:g}" if r.get("rehearsal") else "")
        + (f", update every {r['update_every']} frames" if r.get("update_every", 1) != 1 else "")
        + (f", {aug}" if aug else "")
        + (
            " (integer rule" + (", integer frontend on raw audio)" if out.get("frontend") == "fixed" else ")")
            if out.get("fixed")
            else ""
        )
    )
    print(f"  {'':28s}{'before':>16s}{'after':>16s}")  # query before = zero-shot, query after = adapted
    who = 'query (held-out speakers) %' if len(out['speakers']) > 1 else 'query (held-out speaker) %'
    print(f"  {who:28s}{pm('query_acc_before'):>16s}{pm('query_acc_after'):>16s}")
    print(
        f"  zero-shot (query before fine-tuning) {pm('query_acc_before').strip()} %, "
        f"adapted (query after) {pm('query_acc_after').strip()} %"
    )
    who = f"others ({out['others']['split']} list) %" if out.get("others") else "test (other speakers) %"
    print(f"  {who:28s}{pm('test_acc_before'):>16s}{pm('test_acc_after'):>16s}")
    if "finetune_only_acc" in out:
        print(f"  {'from scratch on support %':28s}{'':>16s}{pm('finetune_only_acc'):>16s}")
