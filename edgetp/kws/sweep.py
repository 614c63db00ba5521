"""Development sweeps of fine-tuning recipes with Ray Tune (`edgetp sweep`).

A trial is one recipe (the model's recorded fine-tuning recipe with some fields replaced) run over the grid's
cells (development speakers x seeds), one cell after the other, reporting the running means after each cell.
ASHA can stop a trial after a few cells when its query accuracy is in the lower part of the trials that got as
far: the budget it allocates is speakers, the unit a choice is judged on. Cells read the grid's feature table
from the object store (edgetp.kws.grid), so a trial's figures equal a serial `finetune` run of its recipe.
The test group never enters: a sweep chooses, and choosing happens on development speakers.
"""

from __future__ import annotations

import statistics
from dataclasses import fields, replace
import itertools
import logging
import os
import tempfile
import time

from edgetp.errors import EdgetpError
from edgetp.kws.grid import Cell, GridJob, run_cell
from edgetp.kws.train import Recipe

METRIC = "query_acc_after"  # mean adapted accuracy over the cells so far (maximised)


def parse_space(items: list[str]) -> dict[str, list]:
    """``["lr=1e-4,2e-4", "epochs=3,6"]`` -> {"lr": [1e-4, 2e-4], "epochs": [3, 6]}, typed as the Recipe field."""
    types = {f.name: type(f.default) for f in fields(Recipe) if f.name not in ("seed",)}
    space: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise EdgetpError(f"--space {item!r}: give FIELD=V1,V2,... (fields: {', '.join(sorted(types))})")
        if key not in types:
            raise EdgetpError(f"--space {item!r}: {key!r} is not a recipe field ({', '.join(sorted(types))})")
        if key in space:
            raise EdgetpError(f"--space: {key} is given twice")
        try:
            space[key] = [types[key](v.strip()) for v in values.split(",")]
        except ValueError:
            raise EdgetpError(f"--space {item!r}: {key} takes {types[key].__name__} values") from None
    if not space:
        raise EdgetpError("give at least one --space FIELD=V1,V2,...")
    return space


def recipes(base, space: dict) -> list:
    """Every recipe of the space's grid, checked before any trial starts (a bad value is one error now, not a
    failed trial an hour later)."""
    out = []
    for combo in itertools.product(*space.values()):
        r = replace(base, **dict(zip(space, combo)))
        try:
            r.check()
        except EdgetpError as exc:
            raise EdgetpError(f"--space {dict(zip(space, combo))}: {exc}") from None
        out.append(r)
    return out


def trial(config, job, table, grid):
    """One Ray Tune trial: the job's recipe with ``config``'s fields over the grid, a report after each cell."""
    from ray import tune

    job = replace(job, recipe=replace(job.recipe, **config))
    runs = []
    for k, c in enumerate(grid):
        runs.append(run_cell(job, Cell(*c), cache=table))
        mean = lambda key: statistics.fmean(r[key] for r in runs)
        tune.report(
            {
                "cells": k + 1,
                METRIC: mean(METRIC),
                "query_acc_before": mean("query_acc_before"),
                "forgetting": mean("test_acc_before") - mean("test_acc_after"),
            }
        )


def run_sweep(
    model,
    corpus,
    speakers,
    seeds,
    shots,
    base,
    space,
    fixed=False,
    test_limit=None,
    samples=None,
    asha=True,
    grace=2,
    seed=0,
    workers=None,
    address=None,
    storage=None,
    others="validation",
) -> dict:
    """Run the sweep; returns every trial's config and last figures, and the best completed trial."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console tables: the command prints its own
    from edgetp.kws.grid import cells, feature_table, start_ray

    t0 = time.perf_counter()
    ray = start_ray(workers, address)
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    grid = cells(speakers, seeds)
    job = GridJob(model, corpus, shots, base, fixed, test_limit, others=others)
    table, refused = feature_table(job, grid, recipes(base, space))
    if refused:
        k, err = next(iter(refused.items()))
        raise EdgetpError(f"speaker {grid[k].speaker} seed {grid[k].seed} cannot run: {err}")
    refs = {"job": ray.put(job), "table": ray.put(table)}
    trainable = tune.with_resources(
        tune.with_parameters(
            trial,
            **refs,
            grid=[(c.speaker, c.seed) for c in grid],
        ),
        {"cpu": 1},
    )
    if samples:  # random search over the same values, seeded
        param_space = {k: tune.choice(v) for k, v in space.items()}
        search = BasicVariantGenerator(random_state=seed)
    else:
        param_space = {k: tune.grid_search(v) for k, v in space.items()}
        search = BasicVariantGenerator()
    scheduler = ASHAScheduler(time_attr="cells", max_t=len(grid), grace_period=min(grace, len(grid))) if asha else None
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", scheduler=scheduler, num_samples=samples or 1, search_alg=search
        ),
        run_config=tune.RunConfig(
            storage_path=storage or tempfile.mkdtemp(prefix="edgetp-sweep-"), name="sweep", verbose=0, log_to_file=False
        ),
    )
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    results = tuner.fit()
    trials = []
    for r in results:
        m = r.metrics or {}
        row = {
            "config": dict(r.config),
            "cells": int(m.get("cells", 0)),
            **{k: m[k] for k in (METRIC, "query_acc_before", "forgetting") if k in m},
        }
        row["stopped_early"] = r.error is None and row["cells"] < len(grid)
        if r.error is not None:
            row["error"] = str(r.error).strip().splitlines()[-1]
        trials.append(row)
    complete = [t for t in trials if t["cells"] == len(grid) and "error" not in t]
    best = max(complete, key=lambda t: (t[METRIC], -t["forgetting"]), default=None)
    return {
        "trials": trials,
        "best": best,
        "cells_per_trial": len(grid),
        "seconds": time.perf_counter() - t0,
        "ray_cpus": int(ray.cluster_resources().get("CPU", 0)),
    }
