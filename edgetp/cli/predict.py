"""`edgetp predict`: the words a keyword spotter hears in WAV files (top 3 with scores).

    edgetp predict --model M [--fixed] WAV... [--json F] [--top K]

Each clip goes through the model's own frontend (the paper's log-mel + Δ + ΔΔ, the
model's normalisation); the float path runs the float network, ``--fixed`` the integer
network the device runs (the model's recorded quantization, as `export --c` / `hil`).
A score is the softmax of the readout at the last step. A WAV that cannot be read gets
one line ``ERROR <file>: <why>``; the others are still classified, and the exit status
is 2 when any file failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgetp.cli._options import add_model_option, command
from edgetp.errors import EdgetpError


def register(sub):
    p = command(
        sub,
        "predict",
        """classify WAV files with a keyword spotter (top 3 words with scores)

        Runs a model on each WAV clip (any rate, mono or first channel, about 1 s) and prints its top words with softmax
        scores of the readout.
        """,
    )
    p.add_argument("wavs", nargs="+", metavar="WAV", help="WAV files to classify")
    add_model_option(p)
    p.add_argument("--fixed", action="store_true", help="the integer network the device runs")
    p.add_argument("--top", type=int, default=3, help="words to list per clip (default 3)")
    p.add_argument("--json", metavar="F", help="also write the predictions as JSON")
    p.set_defaults(func=run)


def softmax(u: np.ndarray) -> np.ndarray:
    z = np.asarray(u, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def readout(model, xs: np.ndarray, fixed: bool) -> tuple[np.ndarray, list[str]]:
    """(N, classes) readout in real units at the last step, and notes on the integer model."""
    if not fixed:
        from edgetp.tp.network import infer_sequence

        return np.asarray(infer_sequence(model.params, xs, model.cfg), dtype=np.float64), []
    from edgetp.fixed.finetune import to_int_inputs
    from edgetp.fixed.network_q import infer_sequence_q
    from firmware_gen.qmodel import qmodel_for

    qm, notes = qmodel_for(model)
    # the readout sums readout weights times 0/1 spikes: it carries the readout weights' fractional bits
    frac = qm.fw[f"W{len(model.cfg.hidden)}"]
    return infer_sequence_q(qm, to_int_inputs(qm, xs)).astype(np.float64) / (1 << frac), notes


def run(args) -> int:
    from edgetp.audio.frontend import features
    from edgetp.audio.wav import WavError, load_16k, probe
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model
    from edgetp.paths import portable

    if args.top < 1:
        raise EdgetpError("--top must be >= 1")
    model = load_model(args.model)
    norm = model_norm(model)
    good, feats, failed = [], [], 0
    for path in args.wavs:
        try:
            info = probe(path)
            feats.append(features(load_16k(path, info=info)))
            good.append(path)
        except WavError as exc:
            print(f"ERROR {exc.path}: {exc.reason}", file=sys.stderr)
            failed += 1
        except (OSError, ValueError) as exc:
            print(f"ERROR {path}: {exc}", file=sys.stderr)
            failed += 1
    out = []
    if good:
        xs = norm.apply(np.stack(feats))
        u, notes = readout(model, xs, args.fixed)
        for note in notes:
            if "from the model's recipe" not in note:
                print(f"note: {note}", file=sys.stderr)
        if not np.all(np.isfinite(u)):
            raise EdgetpError("the model's readout is not finite (NaN/inf); the model file is broken")
        p = softmax(u)
        k = min(args.top, len(model.labels))
        for path, row in zip(good, p):
            top = np.argsort(-row, kind="stable")[:k]
            words = [{"word": model.labels[j], "score": round(float(row[j]), 4)} for j in top]
            out.append({"file": portable(path), "top": words})
            print(f"{path}: " + "  ".join(f"{w['word']} {w['score']:.3f}" for w in words))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"model": portable(args.model), "fixed": bool(args.fixed), "predictions": out, "errors": failed},
                indent=1,
            )
        )
    return 2 if failed else 0
