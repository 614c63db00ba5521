"""Causal frontends for a stream (issues 32 and 26): development figures on the real choose speakers.

An experiment, not part of the installed package (run from the repository root). The running maximum of
``frontend["running_max_decay"]`` starts from -inf, so before a word it is the pre-roll noise's own level and lifts
that noise to the feature scale of speech (experiments/results/stream/README.md: 7-11 pp lost on real speech).
Three causal alternatives, each in place of ``edgetp.kws.data.recompress``'s plain running maximum:

- ``--floor F``: an absolute floor, ``m[t] = max(max_b l[t, b], m[t-1] - D/256, F)`` with ``l = log2 S`` of the
  wave as recorded (full scale 1.0);
- ``--pcen GAIN,SHIFT --floor F``: per-channel energy normalisation (PCEN with alpha 1 and a log),
  ``L = ln(1 + GAIN * S / (M + 2^F))`` with ``M`` a per-band first-order smoother of S;
- ``--ahead A``: the plain running maximum read A frames later (frame t divided by m[t + A]): causal with a delay.

The cached float features are peak-normalised (``log1p(S / max S)``), so each utterance's absolute level
``A = log2 max S`` (of the wave as recorded) is measured from its WAV (``levels``) and added back where a variant
needs absolute levels (floor, PCEN).

    python3 experiments/causal_frontends.py levels --data-root MIX --out MIX.levels.npz
    python3 experiments/causal_frontends.py pretrain --levels MIX.levels.npz --floor F [--pcen G,S | --ahead A] \
        -- <edgetp pretrain arguments with --running-max D>
    python3 experiments/causal_frontends.py score --data-root DEV --levels DEV.levels.npz --floor F \
        [--pcen G,S | --ahead A] [--decay D] [--fixed] --model M --json OUT

``score`` is experiments/real_zero_shot.py's zero-shot figure on the choose speakers with the same frontend;
``--decay D`` scores a model pretrained on the utterance's maximum with the causal variant. The variant is not
recorded in the model file (an experiment); the results JSON records it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import edgetp.kws.data as kd
from edgetp.audio import frontend as F
from edgetp.data.gsc import load_corpus

STATE = {"levels": None, "idx": None, "floor": None}


def levels(corpus, chunk: int = 256) -> dict:
    """Per utterance: A = log2 max S (the wave as recorded) and the 10th / 50th percentile of its frames' peak
    log2 S (what the quiet part of a clip sits at)."""
    from tqdm import tqdm

    n = len(corpus.utterances)
    A, q10, q50 = (np.empty(n) for _ in range(3))
    half = F.N_FFT // 2
    for a in tqdm(range(0, n, chunk), desc="levels", unit="chunk"):
        rows = range(a, min(n, a + chunk))
        x = np.stack([F.centre(F.as_float_16k(corpus.load(i))) for i in rows])
        frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (half, half))), F.N_FFT, axis=1)
        spec = np.fft.rfft(frames[:, :: F.HOP] * F.WINDOW, axis=-1)
        S = (spec.real**2 + spec.imag**2) @ F.MEL.T  # (B, 101, 40)
        with np.errstate(divide="ignore"):
            peak = np.log2(S.max(axis=-1))  # (B, 101)
        A[a : a + len(x)] = peak.max(axis=1)
        q10[a : a + len(x)], q50[a : a + len(x)] = np.percentile(peak, [10, 50], axis=1)
    return {"A": A, "q10": q10, "q50": q50, "keys": np.array([u.key for u in corpus.utterances])}


def floored_running_max(l2: np.ndarray, decay: int, floor: float) -> np.ndarray:
    """``m[t] = max(max_b l[t, b], m[t-1] - decay / 256, floor)`` from ``m[-1] = floor``; (…, T, 1)."""
    peak = np.max(l2, axis=-1)
    m = np.empty_like(peak)
    step = decay / float(1 << kd.RUNNING_MAX_F)
    prev = np.full(peak.shape[:-1], floor, dtype=peak.dtype)
    for t in range(peak.shape[-1]):
        prev = np.maximum(np.maximum(peak[..., t], prev - step), floor)
        m[..., t] = prev
    return m[..., None]


def recompress_floor(x, gain, decay, A, floor):
    """``kd.recompress`` with the floored running maximum on absolute levels (``A`` per utterance)."""
    x = np.asarray(x)
    out = np.empty(x.shape, np.float32)
    for i in range(0, len(x), kd.RECOMPRESS_CHUNK):
        r = np.expm1(np.asarray(x[i : i + kd.RECOMPRESS_CHUNK, :, : F.N_MELS], dtype=np.float64))
        with np.errstate(divide="ignore"):
            l2 = np.log2(r) + A[i : i + len(r), None, None]
        m = floored_running_max(l2, decay, floor)
        L = np.log1p(gain * np.exp2(l2 - m))  # exp2(-inf) = 0: a zero band
        out[i : i + len(r)] = np.concatenate([L, np.matmul(F.DELTA1.T, L), np.matmul(F.DELTA2.T, L)], axis=-1)
    return out


def recompress_pcen(x, gain, A, shift, floor):
    """Per-channel energy normalisation (PCEN with alpha 1 and a log): ``M[t] = M[t-1] + (S[t] - M[t-1]) / 2^shift``
    per band from ``M[-1] = S[0]`` (a stream's smoother has converged on what came before), and
    ``L = ln(1 + gain * S / (M + 2^floor))`` on absolute levels: steady input (noise) sits at ln(1 + gain), onsets
    above it."""
    x = np.asarray(x)
    out = np.empty(x.shape, np.float32)
    a = 1.0 / (1 << shift)
    for i in range(0, len(x), kd.RECOMPRESS_CHUNK):
        r = np.expm1(np.asarray(x[i : i + kd.RECOMPRESS_CHUNK, :, : F.N_MELS], dtype=np.float64))
        S = r * np.exp2(A[i : i + len(r), None, None])
        M = np.empty_like(S)
        prev = S[:, 0]
        for t in range(S.shape[1]):
            prev = prev + (S[:, t] - prev) * a
            M[:, t] = prev
        L = np.log1p(gain * S / (M + 2.0**floor))
        out[i : i + len(r)] = np.concatenate([L, np.matmul(F.DELTA1.T, L), np.matmul(F.DELTA2.T, L)], axis=-1)
    return out


def install(level_file: str, floor: float, corpus_keys) -> None:
    """Replace ``edgetp.kws.data``'s ``features`` / ``recompress`` so that every recompress of a features(...)
    result uses the floored maximum with those utterances' levels."""
    lv = np.load(level_file)
    if list(lv["keys"]) != list(corpus_keys):
        raise SystemExit(f"{level_file}: made for another corpus")
    STATE.update(levels=lv["A"], floor=floor)
    plain_features, plain_recompress = kd.features, kd.recompress

    def features(corpus, indices, *a, **k):
        STATE["idx"] = np.asarray(indices, dtype=np.int64)
        return plain_features(corpus, indices, *a, **k)

    def recompress(x, gain, decay=None, ahead=0):
        if decay is None:
            return plain_recompress(x, gain, decay, ahead)
        idx = STATE["idx"]
        if idx is None or len(idx) != len(x):
            raise RuntimeError("recompress of features that did not come from features()")
        STATE["idx"] = None
        if STATE.get("ahead") is not None:  # the package's look-ahead (edgetp.kws.data.read_ahead)
            return plain_recompress(x, gain, decay, STATE["ahead"])
        if STATE.get("pcen"):
            g, shift = STATE["pcen"]
            return recompress_pcen(x, g, STATE["levels"][idx], shift, STATE["floor"])
        return recompress_floor(x, gain, decay, STATE["levels"][idx], STATE["floor"])

    kd.features, kd.recompress = features, recompress


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("levels")
    p.add_argument("--data-root", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("pretrain")
    p.add_argument("--levels", required=True)
    p.add_argument("--floor", type=float, required=True, help="F in log2 of mel power (full scale 1.0)")
    p.add_argument("--pcen", help="GAIN,SHIFT: per-channel energy normalisation instead of the floored maximum")
    p.add_argument("--ahead", type=int, help="frames of look-ahead of the plain running maximum (no floor)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p = sub.add_parser("score")
    p.add_argument("--data-root", required=True)
    p.add_argument("--levels", required=True)
    p.add_argument("--floor", type=float, required=True)
    p.add_argument("--pcen", help="GAIN,SHIFT (as the model was pretrained)")
    p.add_argument("--ahead", type=int)
    p.add_argument("--fixed", action="store_true", help="the integer network the device runs")
    p.add_argument("--decay", type=int, help="score an utterance-maximum model with this decay")
    p.add_argument("--model", required=True)
    p.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "levels":
        corpus = load_corpus(args.data_root)
        np.savez(args.out, **levels(corpus))
        return 0
    STATE["ahead"] = args.ahead
    if args.pcen:
        g, sh = args.pcen.split(",")
        STATE["pcen"] = (float(g), int(sh))
    if args.cmd == "pretrain":
        from edgetp.cli import main as cli

        rest = [a for a in args.rest if a != "--"]
        root = rest[rest.index("--data-root") + 1]
        install(args.levels, args.floor, [u.key for u in load_corpus(root).utterances])
        return cli(["pretrain", *rest])
    from edgetp.data.real import DEV_INFO
    from edgetp.kws.real_dev import score
    from edgetp.model import load_model

    root = Path(args.data_root)
    corpus = load_corpus(root)
    install(args.levels, args.floor, [u.key for u in corpus.utterances])
    model = load_model(args.model)
    if args.decay is not None:
        model.frontend["running_max_decay"] = args.decay
    row = score(model, corpus, corpus.select(split="testing"), args.fixed)
    info = json.loads((root / DEV_INFO).read_text())
    out = {"floor": args.floor, "pcen": args.pcen, "ahead": args.ahead, "decay": args.decay}
    out.update(model=Path(args.model).stem, hash=model.hash(), real=info["params"]["real"])
    out["fixed" if args.fixed else "float"] = row
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{args.model}: floor {args.floor}: {row['top1']:.1f} % all, {row['core_top1']:.1f} % core ten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
