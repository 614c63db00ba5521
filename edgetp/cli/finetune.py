"""`edgetp finetune --kws`: the paper's speaker adaptation with TP (float, or --fixed)."""
from __future__ import annotations

import json
from pathlib import Path

from edgetp.errors import EdgetpError
from edgetp.tp.config import TARGETS

DEFAULT_MODEL = "kws-mcu"


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
    p = sub.add_parser("finetune", help="personalise a pretrained keyword spotter to one speaker with TP",
                       description="Loads a pretrained model, holds out --speaker, fine-tunes on --shots "
                                   "utterances per word with TP and reports query accuracy before/after, a "
                                   "from-scratch baseline and the other speakers' accuracy before/after.")
    p.add_argument("--kws", action="store_true", required=True, help="keyword spotting (the only task so far)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"shipped model name or model file (default {DEFAULT_MODEL})")
    p.add_argument("--data-root", help="GSC-layout corpus (default: the offline corpus set-up generated)")
    p.add_argument("--speaker", help="held-out speaker(s): an id, ids joined by commas, 'test' or 'dev' (the "
                        "model's test / development voice group). Default: the model's test group when it records "
                        "one and the corpus has it (mean ± std over speakers × seeds), else the speaker it was "
                        "pretrained without")
    p.add_argument("--others", metavar="validation|testing", default=None,
                   help="which other speakers measure forgetting (others before / after): the validation-list "
                        "speakers (default for the development group) or the testing-list speakers (default "
                        "otherwise); a voice group never uses the other group's")
    p.add_argument("--allow-seen-speaker", action="store_true",
                   help="fine-tune on a speaker the model was pretrained on (refused by default: not held out); "
                        "the report then says so")
    p.add_argument("--shots", default="5", help="1, 5, ... or all (default 5)")
    p.add_argument("--seeds", type=int, default=None,
                   help="repeats with a resampled support set (default 3 for one speaker, 1 per speaker for a "
                        "voice group, to keep the default run short)")
    p.add_argument("--epochs", type=int, default=None, help="default: the model's recipe, else 3")
    p.add_argument("--lr", type=float, default=None, help="default: the model's recipe, else 1e-4")
    p.add_argument("--optimizer", choices=("adam", "sgd", "rownorm", "colnorm"), default=None,
                   help="adam (default), sgd, rownorm or colnorm (per-neuron / per-input RMS normalisation: "
                        "the float twins of the integer rule's updates; --fixed maps adam to colnorm)")
    p.add_argument("--batch", type=int, default=None, help="default 1")
    p.add_argument("--targets", choices=TARGETS, default=None, help="default classes")
    p.add_argument("--train", choices=("all", "readout"), default=None, help="layers that learn (default all)")
    p.add_argument("--rehearsal", type=float, default=None, metavar="R",
                   help="mix R other-speaker pretraining utterances per support utterance into fine-tuning, "
                        "against forgetting (default 0)")
    p.add_argument("--update-every", type=int, default=None, metavar="K",
                   help="learn on every K-th frame of a sample (t %% K == 0, t from 0 at its start; the other "
                        "frames run the forward pass only); default: the model's recipe, else 1")
    p.add_argument("--shift", type=int, default=None, metavar="N",
                   help="augment the fine-tuning utterances in each epoch: a random time shift of up to +-N frames "
                        "(float rule only; default: the model's recipe, else 0)")
    p.add_argument("--noise", type=float, default=None, metavar="STD",
                   help="augment: Gaussian feature noise of this std (float rule only; default: the recipe's, else 0)")
    p.add_argument("--warp", type=float, default=None, metavar="W",
                   help="augment: a mel-axis (vocal-tract-length) warp by a random factor in 1 +- W (float rule "
                        "only; default: the recipe's, else 0)")
    p.add_argument("--fixed", action="store_true", help="use the integer-only TP rule (what the device runs)")
    p.add_argument("--test-limit", type=int, default=2000,
                   help="at most this many other-speaker test utterances (seeded subsample; 0 = all)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false", default=None,
                   help="skip the from-scratch baseline")
    p.add_argument("--baseline", dest="baseline", action="store_true",
                   help="train the from-scratch baseline (default for one speaker; off for a voice group, to keep "
                        "the default run short)")
    p.add_argument("--save", metavar="PATH", help="save the fine-tuned model of the first speaker's first seed")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a figure (accuracy per epoch, before/after, confusion)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def recipe_from(args, model):
    from edgetp.kws.train import AUGMENT, Recipe, check_augment
    from edgetp.tp.config import check_update_every

    if args.update_every is not None:   # named as the user typed it; Recipe.check says "update every"
        check_update_every(args.update_every, "--update-every")
    typed = [f"--{k}" for k in AUGMENT if getattr(args, k)]
    if args.fixed and typed:
        raise EdgetpError(f"{', '.join(typed)} with --fixed: the integer rule (and the device) learns from the "
                          "utterances as recorded; augmentation is for the float rule")
    ft = dict(model.recipe.get("finetune", {}))
    if args.fixed:   # a recipe's augmentation is the float recipe's; the integer rule runs without it
        ft = {k: v for k, v in ft.items() if k not in AUGMENT}
    pick = lambda k, dflt: getattr(args, k) if getattr(args, k) is not None else ft.get(k, dflt)
    check_augment(args.shift or 0, args.noise or 0.0, args.warp or 0.0, [f"--{k}" for k in AUGMENT])
    r = Recipe(epochs=pick("epochs", 3), lr=pick("lr", 1e-4), optimizer=pick("optimizer", "adam"),
               batch=pick("batch", 1), targets=pick("targets", "classes"), train=pick("train", "all"),
               rehearsal=pick("rehearsal", 0.0), update_every=pick("update_every", 1),
               shift=pick("shift", 0), noise=pick("noise", 0.0), warp=pick("warp", 0.0))
    r.check()
    return r


def run(args) -> int:
    from edgetp.kws.data import check_speaker, corpus_for, seen_note
    from edgetp.kws.protocol import finetune_seed, summarize
    from edgetp.model import load_model, save_model
    from edgetp.paths import portable

    shots = _shots(args.shots)
    if args.seeds is not None and args.seeds < 1:
        raise EdgetpError("--seeds must be >= 1")
    model = load_model(args.model)
    recipe = recipe_from(args, model)
    corpus = corpus_for(model, args.data_root)
    from edgetp.kws.speakers import others_split, resolve
    speakers = resolve(model, corpus, args.speaker)
    others = others_split(model, speakers, args.others)
    from edgetp.kws.ledger import opened, record
    book = opened(args.model, model, speakers)   # a run on the test group: its ledger, checked before the run
    if args.seeds is None:
        args.seeds = 3 if len(speakers) == 1 else 1
    if args.baseline is None:
        args.baseline = len(speakers) == 1
    seen = check_speaker(model, corpus, speakers, args.allow_seen_speaker, args.model)
    note = seen_note(seen, speakers)
    if note:
        print(f"warning: {note}", flush=True)
    limit = args.test_limit or None
    runner = finetune_seed
    if args.fixed:
        from edgetp.kws.fixed_protocol import finetune_seed_fixed as runner
    per_seed = []
    for speaker, seed in ((s, k) for s in speakers for k in range(args.seeds)):
        r = runner(model, corpus, speaker, shots, seed, recipe, test_limit=limit, baseline=args.baseline,
                   progress=not args.quiet, others=others)
        per_seed.append(r)
        print(f"{speaker + ' ' if len(speakers) > 1 else ''}seed {seed}: query zero-shot {r['query_acc_before']:.1f} -> adapted {r['query_acc_after']:.1f} %  "
              f"others {r['test_acc_before']:.1f} -> {r['test_acc_after']:.1f} %"
              + (f"  from scratch {r['finetune_only_acc']:.1f} %" if "finetune_only_acc" in r else "")
              + f"  ({r['support']} support" + (f" + {r['rehearsal']} rehearsal" if r.get("rehearsal") else "")
              + f", {r['query']} query, {r['seconds']:.1f} s)", flush=True)
    out = summarize(per_seed, speakers, shots, recipe, portable(args.model))
    out["model_hash"] = model.hash()   # the model cards flag rows measured on another model file
    out["fixed"] = bool(args.fixed)
    out.update(seen)
    if note:
        out["note"] = note
    if args.fixed:
        out.update({k: per_seed[0][k] for k in ("int_optimizer", "wbits", "hbits", "frozen_hidden") if k in per_seed[0]})
    _table(out)
    record(book, out, model, results=args.json)
    if note:
        print(f"note: {note}")
    if args.save:
        first = per_seed[0]["params"]
        if args.fixed:
            raise EdgetpError("--save with --fixed: save the integer model with edgetp export (not a float model)")
        from dataclasses import replace
        tuned = replace(model, params=first, recipe=dict(model.recipe, finetuned_on=speakers[0], finetune=recipe.to_dict()))
        save_model(tuned, args.save)
        print(f"saved the fine-tuned model (seed 0) to {args.save}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if args.plot:
        from edgetp.kws.report import plot_finetune
        plot_finetune(out, model.labels, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _table(out: dict) -> None:
    from edgetp.kws.train import augment_words

    aug = augment_words(out["recipe"])
    pm = lambda k: f"{out[k]:6.2f} ± {out[k + '_std']:.2f}" if k in out else "   n/a"
    r = out["recipe"]
    opt = f"integer {out['int_optimizer']}" if out.get("fixed") else r["optimizer"]
    who = f"speaker {out['speaker']}" if len(out["speakers"]) == 1 else \
        f"{len(out['speakers'])} speakers ({out['speaker']}; mean ± std over speakers × seeds)"
    print(f"\n{who}, {out['shots']} shots, {out['seeds']} seeds, "
          f"{opt} lr {r['lr']:g}, batch {r['batch']}, targets {r['targets']}, train {r['train']}, "
          f"{r['epochs']} epochs" + (f", rehearsal {r['rehearsal']:g}" if r.get("rehearsal") else "")
          + (f", update every {r['update_every']} frames" if r.get("update_every", 1) != 1 else "")
          + (f", {aug}" if aug else "")
          + (" (integer rule)" if out.get("fixed") else ""))
    print(f"  {'':28s}{'before':>16s}{'after':>16s}")   # query before = zero-shot, query after = adapted
    print(f"  {'query (held-out speakers) %' if len(out['speakers']) > 1 else 'query (held-out speaker) %':28s}{pm('query_acc_before'):>16s}{pm('query_acc_after'):>16s}")
    print(f"  zero-shot (query before fine-tuning) {pm('query_acc_before').strip()} %, "
          f"adapted (query after) {pm('query_acc_after').strip()} %")
    who = f"others ({out['others']['split']} list) %" if out.get("others") else "test (other speakers) %"
    print(f"  {who:28s}{pm('test_acc_before'):>16s}{pm('test_acc_after'):>16s}")
    if "finetune_only_acc" in out:
        print(f"  {'from scratch on support %':28s}{'':>16s}{pm('finetune_only_acc'):>16s}")
