"""Pictures of a stream's detection: the keywords' margins over time, and a DET curve (matplotlib, lazy)."""

from __future__ import annotations

import numpy as np

from edgetp.stream.detector import KEYWORDS, window_sums


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def keyword_margins(increments, spec) -> np.ndarray:
    """(frames, 10): each keyword's window sum minus the best other class's (its margin when it is on top)."""
    S = window_sums(increments, spec.window)
    out = np.empty((len(S), len(KEYWORDS)))
    for i, w in enumerate(KEYWORDS):
        k = spec.labels.index(w)
        out[:, i] = S[:, k] - np.delete(S, k, axis=1).max(axis=1)
    return out


def plot_scores(path, increments, spec, reports, hop_s: float = 0.01) -> None:
    plt = _pyplot()
    m = keyword_margins(increments, spec)
    t = np.arange(len(m)) * hop_s
    fig, ax = plt.subplots(figsize=(max(8.0, min(40.0, t[-1] / 6 if len(t) else 8.0)), 4.5))
    floor = -2 * max(abs(x) for x in spec.thresholds if np.isfinite(x)) - 1
    for i, w in enumerate(KEYWORDS):
        ax.plot(t, np.maximum(m[:, i], floor), lw=0.8, label=w)
    thr = sorted({x for x in spec.thresholds if np.isfinite(x)})
    for x in thr:
        ax.axhline(x, color="k", ls="--", lw=0.8)
    for f, w, s in reports:
        ax.plot(f * hop_s, s, "kv")
        ax.annotate(w, (f * hop_s, s), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"margin over {spec.window} frames (readout units)")
    ax.set_title(f"keyword margins and {len(reports)} detections (dashed: threshold)")
    ax.legend(ncol=5, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_det(path, det: list, chosen: dict) -> None:
    plt = _pyplot()
    fa = np.array([d["fa_per_hour"] for d in det])
    miss = np.array([100 * (d["miss_rate"] or 0.0) for d in det])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(fa, miss, "o-", ms=3, label="threshold sweep")
    if chosen.get("miss_rate") is not None:
        ax.plot([chosen["fa_per_hour"]], [100 * chosen["miss_rate"]], "r*", ms=12, label="chosen thresholds")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("false alarms per hour")
    ax.set_ylabel("miss rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("DET: miss rate against false alarms per hour")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
