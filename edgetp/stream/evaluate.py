"""Scoring detections against a stream's labelled clips: miss rate, false alarms per hour, DET (issue 32).

Matching rule: a report of word w at time t hits the earliest not-yet-hit occurrence of keyword w whose clip span
[start, end + TOLERANCE_S] holds t; one hit per occurrence. Every other report is a false alarm (a wrong word at the
right time, a second report of one occurrence, anything in a pause or on another word). The miss rate is
1 - hits / occurrences; false alarms are counted per hour of stream.
"""

from __future__ import annotations

import bisect

import numpy as np

from edgetp.stream.detector import KEYWORDS, margins, scan, window_sums

TOLERANCE_S = 0.5  # reports up to this long after a clip's end still count for it (the window lags the word)
SR = 16000


def match(reports, events, seconds: float, tolerance: float = TOLERANCE_S) -> dict:
    """``reports``: (time s, word); ``events``: build.Event (samples). Per keyword and overall: occurrences,
    hits, misses, miss_rate, false_alarms, fa_per_hour."""
    per = {w: {"occurrences": 0, "hits": 0, "false_alarms": 0} for w in KEYWORDS}
    spans = {w: [] for w in KEYWORDS}  # per keyword: [start s, end s + tolerance, hit], by start
    for e in sorted(events, key=lambda e: e.start):
        if e.keyword:
            per[e.word]["occurrences"] += 1
            spans[e.word].append([e.start / SR, e.end / SR + tolerance, False])
    starts = {w: [s[0] for s in v] for w, v in spans.items()}
    for t, w in sorted(reports):
        i = bisect.bisect_right(starts[w], t)
        # the spans that can hold t start at or before it; the earliest unhit one of them that does
        for s in spans[w][max(0, i - 3) : i]:
            if not s[2] and s[0] <= t <= s[1]:
                s[2] = True
                per[w]["hits"] += 1
                break
        else:
            per[w]["false_alarms"] += 1
    hours = seconds / 3600.0

    def figures(c):
        n = c["occurrences"]
        return dict(
            c, misses=n - c["hits"], miss_rate=(n - c["hits"]) / n if n else None, fa_per_hour=c["false_alarms"] / hours
        )

    tot = {k: sum(c[k] for c in per.values()) for k in ("occurrences", "hits", "false_alarms")}
    return {"per_keyword": {w: figures(c) for w, c in per.items()}, "overall": figures(tot), "hours": hours}


def sweep_thresholds(top, margin, mask, points: int) -> np.ndarray:
    """0, the quantiles of the positive margins of frames whose top class is a keyword, and one above the largest
    (no report: the curve's end at 0 false alarms), ``points`` in all."""
    pos = margin[mask[top] & (margin > 0)]
    if not pos.size:
        return np.zeros(1)
    q = np.quantile(pos, np.linspace(0.0, 1.0, points - 2))
    return np.unique(np.concatenate([[0.0], q, [np.nextafter(pos.max(), np.inf)]]))


def det_curve(
    increments,
    spec,
    events,
    seconds: float,
    thresholds=None,
    hop_s: float = 0.01,
    tolerance: float = TOLERANCE_S,
    points: int = 41,
) -> list[dict]:
    """Overall miss rate and false alarms per hour with every keyword's threshold at each of ``thresholds``
    (readout units of ``increments``; default :func:`sweep_thresholds`), the detector otherwise ``spec``'s."""
    top, margin = margins(window_sums(increments, spec.window))
    mask = np.array([w in KEYWORDS for w in spec.labels])
    if thresholds is None:
        thresholds = sweep_thresholds(top, margin, mask, points)
    out = []
    for thr in thresholds:
        reps = scan(top, margin, mask, np.full(len(spec.labels), thr), spec.refractory)
        m = match([(f * hop_s, spec.labels[k]) for f, k, _ in reps], events, seconds, tolerance)["overall"]
        out.append(
            {
                "threshold": float(thr),
                "miss_rate": m["miss_rate"],
                "fa_per_hour": m["fa_per_hour"],
                "reports": len(reps),
            }
        )
    return out


def at_target(det: list[dict], fa_per_hour: float) -> dict | None:
    """The DET point of the smallest swept threshold whose false alarms per hour are at most ``fa_per_hour``
    (the calibrated threshold to choose on development data), or None when none is."""
    ok = [d for d in det if d["fa_per_hour"] <= fa_per_hour]
    return min(ok, key=lambda d: d["threshold"]) if ok else None
