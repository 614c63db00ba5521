"""A personalised model's own detection threshold (issue 32, point 5): chosen on one set of streams, measured on
another.

`detect --eval --shots N` scores a personalised model at the zero-shot threshold, where its larger margins turn
into false alarms, and its own DET curve is chosen and measured on the same stream. Here the threshold is a
recipe setting for every personalised model, as a product would ship it:

- **choose** (seed ``--choose-seed``): every adaptation speaker is personalised on N shots drawn with that seed and
  listens to a stream of its own held-out (query) clips built with that seed; the streams are pooled and, for each
  ``--target-fa`` F, the smallest threshold whose pooled false alarms per hour are at most F is taken (likewise
  for the model before personalisation);
- **measure** (seed ``--measure-seed``): other shots, other streams (the same speakers' query clips, other draws,
  order, pauses and noise), scored at the chosen thresholds, per speaker and pooled.

Every speaker here is a development speaker: these are development figures.

    PYTHONPATH=. python3 experiments/detect_personalised.py --data-root DIR --noise ../shared/audio/gsc-real-noise \\
        --out experiments/results/stream/personalised-thresholds.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from argparse import Namespace

import numpy as np

from edgetp.errors import EdgetpError

ADAPT = "37dca74f,5170b77f,964e8cfd,97f4c236,c7dc7278,cd85758f"  # real_gsc_layout.py's adaptation speakers


def listen_both(model: str, data_root: str, speaker: str, shots: int, seed: int, noise, snr: float, minutes: float):
    """(before, after, events, seconds, spec): the increments (readout units) of the model as shipped and of it
    personalised on ``shots`` shots of ``speaker`` (seed ``seed``, the device's integer rule), on one stream of
    the speaker's query clips built with ``seed``."""
    from edgetp.cli.detect import BLOCK_S, Listener, adapted_listener
    from edgetp.kws.data import check_speaker, corpus_for
    from edgetp.kws.speakers import resolve
    from edgetp.stream.build import build_stream

    args = Namespace(model=model, fixed=True, threshold=None, window=None, refractory=None, shots=shots, seed=seed)
    lis = Listener(args)
    corpus = corpus_for(lis.model, data_root)
    speakers = resolve(lis.model, corpus, speaker)
    check_speaker(lis.model, corpus, speakers)
    after, split, _ = adapted_listener(args, lis, corpus, speakers)
    wave, events = build_stream(corpus, split.query, minutes, seed, noise, snr)
    step = BLOCK_S * 16000
    blocks = lambda: (wave[s : s + step] for s in range(0, len(wave), step))
    return lis.listen(blocks())[0], after.listen(blocks())[0], events, len(wave) / 16000, lis.spec


def counts(inc, spec, events, seconds, thr: float) -> dict:
    """Occurrences, hits and false alarms of the detector (``spec``, every keyword at ``thr``) on one stream."""
    from edgetp.stream.detector import KEYWORDS, margins, scan, window_sums
    from edgetp.stream.evaluate import match

    top, margin = margins(window_sums(inc, spec.window))
    mask = np.array([w in KEYWORDS for w in spec.labels])
    reps = scan(top, margin, mask, np.full(len(spec.labels), thr), spec.refractory)
    o = match([(f * 0.01, spec.labels[k]) for f, k, _ in reps], events, seconds)["overall"]
    return {**{k: o[k] for k in ("occurrences", "hits", "false_alarms")}, "hours": seconds / 3600}


def pooled(rows: list[dict]) -> dict:
    n = sum(r["occurrences"] for r in rows)
    h = sum(r["hours"] for r in rows)
    fa = sum(r["false_alarms"] for r in rows)
    return {
        "occurrences": n,
        "miss_rate": 1 - sum(r["hits"] for r in rows) / n,
        "false_alarms": fa,
        "hours": h,
        "fa_per_hour": fa / h,
    }


def choose(runs: list[tuple], targets: list[float]) -> dict:
    """For each target F: the smallest threshold (of the runs' own swept ones) whose pooled false alarms per hour
    are at most F, with the pooled figures there."""
    from edgetp.stream.detector import KEYWORDS, margins, window_sums
    from edgetp.stream.evaluate import sweep_thresholds

    grid = set()
    for inc, spec, _, _ in runs:
        top, margin = margins(window_sums(inc, spec.window))
        mask = np.array([w in KEYWORDS for w in spec.labels])
        grid.update(float(t) for t in sweep_thresholds(top, margin, mask, 61))
    fig = {}
    for t in sorted(grid, reverse=True):  # from no report down, until far past every target (the scan is slow there)
        fig[t] = pooled([counts(inc, spec, ev, s, t) for inc, spec, ev, s in runs])
        if fig[t]["fa_per_hour"] > 4 * max(targets):
            break
    out = {}
    for f in targets:  # the smallest that fits: the refractory time can make false alarms rise with the threshold
        t = min(t for t, p in fig.items() if p["fa_per_hour"] <= f)
        out[str(f)] = {"threshold": t, **fig[t]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="kws-mcu")
    ap.add_argument("--data-root", required=True, help="real_gsc_layout.py's view of the real development clips")
    ap.add_argument("--noise", required=True, help="folder of noise WAVs")
    ap.add_argument("--snr", type=float, default=10.0)
    ap.add_argument("--speakers", default=ADAPT)
    ap.add_argument("--shots", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=10.0, help="each speaker's stream")
    ap.add_argument("--choose-seed", type=int, default=0)
    ap.add_argument("--measure-seed", type=int, default=1)
    ap.add_argument("--target-fa", type=float, nargs="+", default=[2.0, 30.0])
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.choose_seed == a.measure_seed:
        raise EdgetpError("--choose-seed and --measure-seed must differ (choose in one place, measure in another)")
    from edgetp.stream.build import load_noise

    noise, t0 = load_noise(a.noise), time.time()
    speakers = a.speakers.split(",")
    res = {}
    for phase, seed in (("choose", a.choose_seed), ("measure", a.measure_seed)):
        res[phase] = {
            sp: listen_both(a.model, a.data_root, sp, a.shots, seed, noise, a.snr, a.minutes) for sp in speakers
        }
        print(f"{phase}: {len(speakers)} speakers listened ({time.time() - t0:.0f} s)", file=sys.stderr)
    chosen = {
        which: choose([(r[k], r[4], r[2], r[3]) for r in res["choose"].values()], a.target_fa)
        for k, which in ((0, "before"), (1, "after"))
    }
    measured = {}
    for which, k in (("before", 0), ("after", 1)):
        measured[which] = {}
        for f, c in chosen[which].items():
            rows = {sp: counts(r[k], r[4], r[2], r[3], c["threshold"]) for sp, r in res["measure"].items()}
            measured[which][f] = {"threshold": c["threshold"], "pooled": pooled(list(rows.values())), "speakers": rows}
    out = {
        "command": "PYTHONPATH=. python3 experiments/detect_personalised.py "
        + " ".join("DIR" if v == a.data_root else v for v in (argv or sys.argv[1:])),
        "model": a.model,
        "fixed": True,
        "speakers": speakers,
        "shots": a.shots,
        "minutes_per_stream": a.minutes,
        "snr_db": a.snr,
        "choose_seed": a.choose_seed,
        "measure_seed": a.measure_seed,
        "chosen": chosen,
        "measured": measured,
        "seconds": round(time.time() - t0, 1),
    }
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=1)
    for which in ("before", "after"):
        for f, m in measured[which].items():
            p = m["pooled"]
            print(
                f"{which:6} chosen for <= {float(f):g} / h: T {m['threshold']:.3f} -> measured miss "
                f"{100 * p['miss_rate']:.1f} %, {p['fa_per_hour']:.1f} / h ({p['occurrences']} keywords)"
            )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EdgetpError as e:
        print(f"ERROR {e}", file=sys.stderr)
        sys.exit(2)
