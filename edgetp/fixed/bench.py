"""Integer TP training speed (``edgetp bench train --fixed``)."""

from __future__ import annotations

import statistics
import time

import numpy as np

from edgetp.fixed.network_q import train_sequence_q
from edgetp.fixed.qconfig import from_float
from edgetp.fixed.quantize import quantize_inputs
from edgetp.fixed.update_q import QOpt
from edgetp.tp.config import DEFAULT_LR, NetConfig, init_params


def bench_fixed(
    cfg: NetConfig,
    steps: int = 101,
    batch: int = 1,
    targets: str = "classes",
    repeats: int = 5,
    wbits: int = 16,
    optimizer: str = "colnorm",
    seed: int = 0,
) -> dict:
    """Samples/s of integer training (one sequence of ``batch`` samples per run, median of
    ``repeats`` runs after one that compiles) on a random network of shape ``cfg`` with the
    float benchmark's inputs (uniform in [0, 2), here int16 Q.12)."""
    rng = np.random.default_rng(seed)
    qm = from_float(cfg, init_params(cfg, seed), 12, wbits)
    xs = quantize_inputs(rng.random((batch, steps, cfg.n_in)) * 2, 12)
    labels = rng.integers(0, cfg.n_out, batch)
    opt = QOpt.make(optimizer, DEFAULT_LR, seed)
    train_sequence_q(qm, xs, labels, opt, targets)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        train_sequence_q(qm, xs, labels, opt, targets)
        times.append(time.perf_counter() - t0)
    return {
        "net": cfg.net_string(),
        "steps": steps,
        "batch": batch,
        "targets": targets,
        "wbits": wbits,
        "optimizer": optimizer,
        "samples_per_s": batch / statistics.median(times),
        "times_s": times,
    }
