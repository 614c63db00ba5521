"""A second pretraining stage on real speech: a model pretrained on a real-mix corpus trains again (the readout, or
every layer) on the mix's real pretrain part plus as many of its synthetic pretraining utterances (docs/data.md,
"Real speech"). Development figures: the zero-shot top-1 on the real choose speakers after every epoch.

An experiment, not part of the installed package (run from the repository root):

    python3 experiments/real_second_stage.py --model M.npz --mix MIX --dev DEV --train readout --epochs 3 \\
        --out M2.npz --json OUT.json

The real utterances are the mix's train-split utterances of its real pretrain speakers (``real_mix_info.json``);
the synthetic ones a seeded sample of its other pretraining speakers (the rare words are mostly synthetic). Nothing
of the choose or adapt parts is trained on (checked).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from edgetp.data.gsc import load_corpus
from edgetp.data.real import DEV_INFO, MIX_INFO
from edgetp.kws.data import features
from edgetp.kws.protocol import model_norm
from edgetp.kws.train import Recipe, fit
from edgetp.model import load_model, save_model
from edgetp.threads import single_threaded_blas

sys.path.insert(0, str(Path(__file__).parent))
from real_zero_shot import score  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a model pretrained on --mix")
    ap.add_argument("--mix", required=True, help="the real-mix corpus it was pretrained on")
    ap.add_argument("--dev", required=True, help="the real-dev view (choose speakers: the zero-shot set)")
    ap.add_argument("--train", choices=("readout", "all"), default="readout")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--synth-ratio", type=float, default=1.0, help="synthetic utterances per real one (1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    info = json.loads((Path(args.mix) / MIX_INFO).read_text())
    dev_info = json.loads((Path(args.dev) / DEV_INFO).read_text())
    if dev_info["speakers"] != info["speakers"]:
        raise SystemExit("the mix and the dev view split the real speakers differently")
    model = load_model(args.model)
    mix, dev = load_corpus(args.mix), load_corpus(args.dev)
    real = set(info["speakers"]["pretrain"])
    trained = set(model.recipe.get("pretrain_speakers") or [])
    train = mix.select(split="train")
    r_idx = np.array([i for i in train if mix.utterances[i].speaker in real], dtype=np.int64)
    s_pool = np.array([i for i in train if mix.utterances[i].speaker in trained - real], dtype=np.int64)
    rng = np.random.default_rng(args.seed)
    s_idx = np.sort(rng.choice(s_pool, min(len(s_pool), round(args.synth_ratio * len(r_idx))), replace=False))
    idx = np.concatenate([r_idx, s_idx])
    spk = {mix.utterances[i].speaker for i in idx}
    held = set(info["speakers"]["choose"]) | set(info["speakers"]["adapt"])
    assert not spk & held and spk <= trained, "trains only on the model's own pretraining speakers"
    norm = model_norm(model)
    recipe = Recipe(args.epochs, args.lr, "adam", 64, "classes", args.train, "cosine", args.seed, 8, 0.1)
    params = model.params.copy()
    d_idx = dev.select(split="testing")
    out = {
        "what": "second stage on real speech; zero-shot top-1 on the real choose speakers (development)",
        "model": Path(args.model).name,
        "model_hash": model.hash(),
        "mix": info["params"],
        "recipe": recipe.to_dict(),
        "synth_ratio": args.synth_ratio,
        "real_utterances": int(len(r_idx)),
        "synth_utterances": int(len(s_idx)),
        "before": score(model, dev, d_idx, False),
        "per_epoch": [],
    }
    print(f"before: {out['before']['top1']:.1f} % all, {out['before']['core_top1']:.1f} % core ten", flush=True)
    t0 = time.perf_counter()
    with single_threaded_blas():
        xs = norm.apply(np.asarray(features(mix, idx)))
        ys = mix.labels[idx]

        def on_epoch(e, p):
            f = score(dataclasses.replace(model, params=p), dev, d_idx, False)
            print(f"epoch {e + 1}/{args.epochs}: {f['top1']:.1f} % all, {f['core_top1']:.1f} % core ten", flush=True)
            out["per_epoch"].append({k: f[k] for k in ("top1", "core_top1")})

        fit(params, model.cfg, xs, ys, recipe, on_epoch=on_epoch, desc="second stage")
    # the weights are no longer the pretraining run's alone: a derived_from record would say they were
    rec = {k: v for k, v in model.recipe.items() if k != "derived_from"}
    flags = (
        ("train", args.train),
        ("epochs", args.epochs),
        ("lr", args.lr),
        ("synth-ratio", args.synth_ratio),
        ("seed", args.seed),
    )
    rec["second_stage"] = {
        "from": {"model": Path(args.model).name, "hash": model.hash()},
        **({"pretraining": model.recipe["derived_from"]} if "derived_from" in model.recipe else {}),
        "train": args.train,
        "epochs": args.epochs,
        "lr": args.lr,
        "synth_ratio": args.synth_ratio,
        "seed": args.seed,
        "command": "python3 experiments/real_second_stage.py --model MODEL "
        "--mix CORPUS --dev DEV " + " ".join(f"--{k} {v}" for k, v in flags),
    }
    final = dataclasses.replace(model, params=params, recipe=rec)
    out["after"] = score(final, dev, d_idx, False)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["hash"] = save_model(final, args.out)
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"saved {args.out}: {out['after']['top1']:.1f} % all, {out['after']['core_top1']:.1f} % core ten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
