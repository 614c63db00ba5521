"""`edgetp bench train`: TP training throughput against the plain-NumPy baseline (`bench grid`: bench_grid.py).

Prints edgetp's figure first (``N samples/s``, the median of ``--repeats`` runs), then
the NumPy baseline of the same computation in the same process, then the ratio.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.kws.train import PRETRAIN_OPTIMIZERS
from edgetp.tp.config import DEFAULT_LR, TARGETS


def register(sub):
    p = sub.add_parser("bench", help="benchmarks (throughput, against a baseline run in the same process)")
    bsub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    t = bsub.add_parser("train", help="TP training throughput (samples/s)")
    t.add_argument("--net", default="120-450r-36", help="inputs-hidden[r]-...-classes (default 120-450r-36)")
    t.add_argument("--steps", type=int, default=101, help="time steps per sample (default 101)")
    t.add_argument("--batch", type=int, default=1)
    t.add_argument(
        "--targets", choices=TARGETS, default=None, help="target set (default: classes at batch 1, batch otherwise)"
    )
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    t.add_argument("--optimizer", choices=PRETRAIN_OPTIMIZERS, default="adam")
    t.add_argument("--repeats", type=int, default=5, help="timed runs per implementation; the median is reported")
    t.add_argument("--baseline-repeats", type=int, default=None, help="runs of the NumPy baseline (default: --repeats)")
    t.add_argument("--no-baseline", action="store_true", help="skip the NumPy baseline")
    t.add_argument("--fixed", action="store_true", help="benchmark the integer (fixed-point) rule instead")
    t.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    t.set_defaults(func=run_train)
    from edgetp.cli.bench_grid import add_parser

    add_parser(bsub)


def _median_rate(fn, n_samples, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_samples / statistics.median(times), times


def run_train(args) -> int:
    from edgetp.tp import Optimizer, init_params, parse_net, train_sequence
    from edgetp.tp.numpy_ref import train_sequence_numpy
    from edgetp.tp.propagator import get_cache

    if args.steps < 1 or args.batch < 1 or args.repeats < 1:
        raise EdgetpError("--steps, --batch and --repeats must be >= 1")
    cfg = parse_net(args.net)
    targets = args.targets or ("classes" if args.batch == 1 else "batch")
    if args.fixed:
        return _run_fixed(args, cfg, targets)
    dt = np.dtype(args.dtype).type
    rng = np.random.default_rng(0)
    xs = (rng.random((args.batch, args.steps, cfg.n_in)) * 2).astype(dt)
    labels = rng.integers(0, cfg.n_out, args.batch)
    params = init_params(cfg, 0, dt)
    opt = Optimizer(args.optimizer, DEFAULT_LR)
    # Compile, and compute the frozen propagator's per-class trajectory, outside the timing
    # (as a fine-tuning run does once for all its samples).
    prop = get_cache(None, params, cfg, dt)
    train_sequence(params, xs, labels, cfg, opt, targets, prop=prop)
    rate, times = _median_rate(
        lambda: train_sequence(params, xs, labels, cfg, opt, targets, prop=prop), args.batch, args.repeats
    )
    desc = (
        f"net {cfg.net_string()}, {args.steps} steps, batch {args.batch}, targets={targets}, "
        f"{args.optimizer}, {args.dtype}"
    )
    print(f"{rate:.2f} samples/s  edgetp numba reference ({desc}; median of {args.repeats})")
    out = {
        "net": cfg.net_string(),
        "steps": args.steps,
        "batch": args.batch,
        "targets": targets,
        "optimizer": args.optimizer,
        "dtype": args.dtype,
        "samples_per_s": rate,
        "times_s": times,
    }
    if not args.no_baseline:
        base_params = init_params(cfg, 0, dt)
        reps = args.baseline_repeats or args.repeats
        brate, btimes = _median_rate(
            lambda: train_sequence_numpy(base_params, xs, labels, cfg, args.optimizer, DEFAULT_LR, targets),
            args.batch,
            reps,
        )
        print(f"{brate:.2f} samples/s  plain NumPy baseline (same computation, same process; median of {reps})")
        print(f"{rate / brate:.2f}x  edgetp / NumPy")
        out.update(baseline_samples_per_s=brate, baseline_times_s=btimes, ratio=rate / brate)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def _run_fixed(args, cfg, targets) -> int:
    try:
        from edgetp.fixed.bench import bench_fixed
    except ImportError:
        raise EdgetpError("the integer (fixed-point) reference is not available in this build") from None
    res = bench_fixed(cfg, steps=args.steps, batch=args.batch, targets=targets, repeats=args.repeats)
    print(
        f"{res['samples_per_s']:.2f} samples/s  edgetp integer reference (net {cfg.net_string()}, "
        f"{args.steps} steps, "
        f"batch {args.batch}, targets={targets}, {res['optimizer']}, int{res['wbits']} weights; "
        f"median of {args.repeats})"
    )
    if not args.no_baseline:
        from edgetp.tp import Optimizer, init_params, train_sequence
        from edgetp.tp.propagator import get_cache

        rng = np.random.default_rng(0)
        xs = (rng.random((args.batch, args.steps, cfg.n_in)) * 2).astype(np.float32)
        labels = rng.integers(0, cfg.n_out, args.batch)
        params, opt = init_params(cfg, 0, np.float32), Optimizer("adam", DEFAULT_LR)
        prop = get_cache(None, params, cfg, np.float32)
        train_sequence(params, xs, labels, cfg, opt, targets, prop=prop)
        frate, ftimes = _median_rate(
            lambda: train_sequence(params, xs, labels, cfg, opt, targets, prop=prop), args.batch, args.repeats
        )
        print(
            f"{frate:.2f} samples/s  float32 numba reference, Adam (same net, same process; median of {args.repeats})"
        )
        print(f"{res['samples_per_s'] / frate:.2f}x  integer / float")
        res.update(float_samples_per_s=frate, ratio=res["samples_per_s"] / frate)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0
