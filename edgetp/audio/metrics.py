"""How close two feature sets are: the SNR of each block (log-mel, Δ, ΔΔ), as the integer frontend's
checks against the float one report it (tests/test_frontend_q.py, experiments/frontend_q_snr.py)."""

from __future__ import annotations

import math

import numpy as np

from edgetp.audio.frontend import N_MELS


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - got)^2); inf when equal, nan if ref is all zero or a value is not finite."""
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64)
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(got))):
        return float("nan")
    sig = float(np.sum(ref**2))
    err = float(np.sum((ref - got) ** 2))
    if sig == 0:
        return float("nan")
    return float("inf") if err == 0 else 10.0 * math.log10(sig / err)


BLOCKS = {"mel": slice(0, N_MELS), "delta": slice(N_MELS, 2 * N_MELS), "delta2": slice(2 * N_MELS, 3 * N_MELS)}


def block_snr(ref: np.ndarray, got: np.ndarray) -> dict:
    """SNR in dB of each block (log-mel, Δ, ΔΔ) of (…, 120) features."""
    return {k: snr_db(ref[..., s], got[..., s]) for k, s in BLOCKS.items()}
