"""`edgetp bench grid`: a speaker x seed grid run serially, then on a local Ray, in the same process.

Prints the serial wall time (the baseline), Ray's, their ratio and Ray's fixed costs (start, the feature
table, the per-task overhead), and checks that both runs gave the same figures, bit for bit (exit 1 if not).
It reports times, not accuracies, so any speaker outside the test group will do.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgetp.cli._options import add_model_option
from edgetp.errors import EdgetpError


def add_parser(bsub) -> None:
    g = bsub.add_parser("grid", help="a speaker x seed fine-tuning grid: serial against Ray (wall time, ratio)")
    add_model_option(g)
    g.add_argument("--data-root", help="GSC-layout corpus (default: the offline corpus)")
    g.add_argument(
        "--speaker", default="dev", help="'dev' (default) or ids; never the test group: a benchmark must not spend it"
    )
    g.add_argument("--seeds", type=int, default=3)
    g.add_argument("--shots", default="5")
    g.add_argument("--fixed", action="store_true", help="the integer rule")
    g.add_argument("--workers", type=int, default=2, help="local Ray CPUs (default 2)")
    g.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    g.set_defaults(func=run_grid_bench)


def run_grid_bench(args) -> int:
    from edgetp.cli.finetune import _shots, recorded_recipe
    from edgetp.kws.data import corpus_for
    from edgetp.kws.grid import GridJob, cells, run_ray, run_serial
    from edgetp.kws.speakers import outside_test_group
    from edgetp.model import load_model
    from edgetp.paths import portable

    if args.seeds < 1 or args.workers < 1:
        raise EdgetpError("--seeds and --workers must be >= 1")
    model = load_model(args.model)
    corpus = corpus_for(model, args.data_root)
    speakers = outside_test_group(model, corpus, args.speaker, "a benchmark must not spend it; use dev or ids")
    recipe = recorded_recipe(model, args.fixed)
    grid, shots = cells(speakers, args.seeds), _shots(args.shots)
    what = (
        f"{args.model}, {len(speakers)} speakers x {args.seeds} seeds = {len(grid)} cells, {shots} shots, "
        f"{'integer' if args.fixed else 'float'} rule"
    )
    job = GridJob(model, corpus, shots, recipe, args.fixed, 2000, False)
    serial = run_serial(job, grid, progress=False)
    print(f"{serial.seconds:8.1f} s  serial, one process (baseline; {what})", flush=True)
    ray = run_ray(job, grid, workers=args.workers, progress=False)
    o = ray.overhead
    print(
        f"{ray.seconds:8.1f} s  Ray, {ray.workers} CPUs (of which Ray start {o['ray_start_s']:.1f} s, feature table "
        f"{o['feature_table_s']:.1f} s / {o['feature_table_mb']:.0f} MB; "
        f"per-task overhead {o['per_task_overhead_s']:.1f} s)"
    )
    print(f"{serial.seconds / ray.seconds:8.2f}x Ray / serial")
    mean = lambda rs: sum(r["seconds"] for r in rs) / max(1, len(rs))
    print(
        f"   a cell: {mean(serial.per_seed):.2f} s alone, {mean(ray.per_seed):.2f} s beside another on Ray "
        "(the cores' shared caches and memory bandwidth)"
    )
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]
    same = not ray.failed and strip(ray.per_seed) == strip(serial.per_seed)
    print(f"figures: {'identical, bit for bit' if same else 'DIFFERENT'} over {len(grid)} cells")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": portable(args.model),
                    "model_hash": model.hash(),
                    "speakers": speakers,
                    "seeds": args.seeds,
                    "shots": shots,
                    "fixed": bool(args.fixed),
                    "cells": len(grid),
                    "serial_s": serial.seconds,
                    "ray_s": ray.seconds,
                    "ray_cpus": ray.workers,
                    "ratio": serial.seconds / ray.seconds,
                    **o,
                    "cell_seconds": [r["seconds"] for r in serial.per_seed],
                    "ray_cell_seconds": [r["seconds"] for r in ray.per_seed],
                    "identical": same,
                },
                indent=1,
            )
        )
    return 0 if same else 1
