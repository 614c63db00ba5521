"""A grid of speaker-adaptation cells (held-out speaker x seed), run in this process or as Ray tasks.

A cell is one seed of the protocol for one speaker (``protocol.finetune_seed`` or its integer twin). Everything
random in it (the support draw, the rehearsal draw, the fine-tuning order and augmentation) is seeded by the
cell's seed, and its numerical work is single-threaded, so a cell's figures do not depend on where or in which
order it runs: the Ray grid and the serial loop agree bit for bit (tests/test_grid.py).

With Ray the features every cell reads are selected once on the driver (a dry run of each cell's data
selection), computed or read from the feature cache once, and put in Ray's object store with the model and the
corpus record; workers read them from there and never touch the feature cache, so a cell can run on another
machine of a cluster (which needs edgetp installed, not the corpus).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
import logging

import numpy as np

from edgetp.errors import EdgetpError
from edgetp import paths
from edgetp.audio.frontend import N_FEATURES, N_FRAMES
from edgetp.data.cache import FLOAT, cached_features
from edgetp.kws.job import GridJob
from edgetp.kws.protocol import cell_data
from edgetp.threads import single_threaded_blas

INSTALL_HINT = "pip install 'edgetp[ray]' (or: pip install 'ray[tune]')"


@dataclass(frozen=True)
class Cell:
    speaker: str
    seed: int


def cells(speakers, seeds: int) -> list[Cell]:
    """The grid in the serial run's order: speakers as given, seeds 0..seeds-1 within each."""
    return [Cell(s, k) for s in speakers for k in range(seeds)]


class FeatureTable:
    """Precomputed features of some corpus utterances from one frontend (``source``, an
    edgetp.data.cache.Frontend), by corpus index: the ``cache`` argument of ``edgetp.kws.data.features`` for a
    grid's cells. Strict: another frontend or an index it does not hold is an error, so a table that misses
    what a cell reads cannot silently fall back to another source."""

    def __init__(self, indices, rows: np.ndarray, source):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.rows, self.source = rows, source
        self._row = {int(i): r for r, i in enumerate(self.indices)}

    def take(self, corpus, indices, source) -> np.ndarray:
        if source != self.source:
            raise EdgetpError(
                f"the grid's feature table holds the {self.source.kind} frontend's features, not "
                f"the {source.kind} frontend's"
            )
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        missing = [int(i) for i in idx if int(i) not in self._row]
        if missing:
            raise EdgetpError(
                f"the grid's feature table lacks {len(missing)} utterances (first: "
                f"{corpus.utterances[missing[0]].path}): the cells read features it did not select"
            )
        return self.rows[[self._row[int(i)] for i in idx]]


class _Recorder:
    """A feature source that records what is asked and answers zeros: the dry run of a cell's data selection."""

    def __init__(self):
        self.asked: set[int] = set()
        self.sources: set = set()

    def take(self, corpus, indices, source) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.asked.update(int(i) for i in idx)
        self.sources.add(source)
        return np.zeros((len(idx), N_FRAMES, N_FEATURES), dtype=source.dtype)


def feature_table(job: GridJob, grid: list[Cell], recipes: list | None = None, cache_dir=None):
    """The features the cells of ``grid`` read, selected by a dry run of each cell's data selection, and
    {cell's place: error} for the cells whose selection fails (they would fail alike as tasks). ``recipes`` (a
    sweep's; default: the job's) all read from the one table."""
    rec, failed = _Recorder(), {}
    for k, c in enumerate(grid):
        try:
            inputs = None
            if job.fixed:  # the integer model (calibrated per speaker when the file records no device settings)
                from edgetp.kws.fixed_protocol import device_qmodel, model_inputs

                inputs = model_inputs(job.model, device_qmodel(job.model, job.corpus, c.speaker, rec), job.frontend)
            for r in recipes or [job.recipe]:
                cell_data(
                    job.model, job.corpus, c.speaker, job.shots, c.seed, r, rec, job.test_limit, inputs, job.others
                )
        except EdgetpError as exc:
            failed[k] = _one_line(exc)
    if len(rec.sources) > 1:  # calibration reads float features; the cells must read one frontend only
        raise EdgetpError("a grid's cells read features of more than one frontend; run it without Ray")
    source = next(iter(rec.sources), FLOAT)
    idx = np.array(sorted(rec.asked), dtype=np.int64)
    rows = (
        cached_features(job.corpus, idx, cache_dir or paths.cache_dir(), fe=source)
        if len(idx)
        else np.zeros((0, 1, 1), dtype=source.dtype)
    )
    return FeatureTable(idx, np.ascontiguousarray(rows), source), failed


def run_cell(job: GridJob, cell: Cell, cache=None, progress: bool = False, keep_params: bool = False) -> dict:
    """One cell's figures (``finetune_seed`` / ``finetune_seed_fixed`` with the job's frontend), forgetting
    measured on the job's ``others`` list; the tuned parameters only when kept."""
    if job.fixed:
        from edgetp.kws.fixed_protocol import finetune_seed_fixed as runner
    else:
        from edgetp.kws.protocol import finetune_seed as runner
    with single_threaded_blas():
        r = runner(job, cell.speaker, cell.seed, cache=cache, progress=progress)
    if not keep_params:
        r.pop("params", None)
    return r


@dataclass
class GridResult:
    per_seed: list  # the cells' figures, in the grid's order (failed cells left out)
    failed: list  # {"speaker", "seed", "error"} per failed cell
    seconds: float
    workers: int | None = None  # Ray CPUs, None for the serial run
    overhead: dict | None = None  # Ray start, feature table, per-task overhead (s)


def run_serial(job: GridJob, grid, progress=True, keep_first=False, on_cell=None) -> GridResult:
    """The grid in this process, cell after cell, reading the feature cache as every command does."""
    t0 = time.perf_counter()
    out = []
    for k, c in enumerate(grid):
        r = run_cell(job, c, progress=progress, keep_params=keep_first and k == 0)
        out.append(r)
        if on_cell:
            on_cell(r)
    return GridResult(out, [], time.perf_counter() - t0)


def _ray():
    try:
        import ray
    except ImportError:
        raise EdgetpError(
            f"workers / ray (--workers / --ray; finetune: --set workers=N) run the grid on Ray, which is "
            f"not installed: {INSTALL_HINT}"
        ) from None
    return ray


def start_ray(workers: int | None, address: str | None):
    """Join the cluster at ``address`` ("auto", "ray://HOST:PORT"), or start a local Ray with ``workers`` CPUs
    (default: this machine's cores). Local workers import edgetp from where this process does."""
    ray = _ray()
    if workers is not None and workers < 1:
        raise EdgetpError(f"--workers must be >= 1, got {workers}")
    if ray.is_initialized():
        return ray
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds the edgetp package
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}}
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=False,
                runtime_env=env,
            )
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the user needs one line
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise EdgetpError(
            f"could not start {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    return ray


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}".strip()


def run_ray(
    job: GridJob, grid, workers=None, address=None, progress=True, keep_first=False, on_cell=None
) -> GridResult:
    """The grid as Ray tasks (one per cell); a failed cell is reported and the others finish."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    ray = start_ray(workers, address)
    t_ray = time.perf_counter()
    # workers start and import the rule's modules while the driver selects the features
    warm = [
        ray.remote(num_cpus=1)(_warm).remote(job.fixed)
        for _ in range(min(len(grid), int(ray.cluster_resources().get("CPU", 1))))
    ]
    table, refused = feature_table(job, grid)
    ray.get(warm)
    t_table = time.perf_counter()
    # one copy of each in the object store; every task gets a reference
    refs = ray.put(job), ray.put(table)
    task = ray.remote(num_cpus=1, max_retries=0)(_remote_cell)
    pending = {task.remote(*refs, c, keep_first and k == 0): k for k, c in enumerate(grid) if k not in refused}
    done: dict[int, dict] = {}
    failed = [{"speaker": grid[k].speaker, "seed": grid[k].seed, "error": e} for k, e in refused.items()]
    with tqdm(total=len(grid), desc="grid cells", unit="cell", disable=not progress) as bar:
        for f in failed:
            bar.write(f"cell {f['speaker']} seed {f['seed']} failed: {f['error']}")
            bar.update(1)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            k = pending.pop(ready[0])
            try:
                done[k] = ray.get(ready[0])
                if on_cell:
                    on_cell(done[k])
            except Exception as exc:  # noqa: BLE001 - a cell's own error, reported, the others go on
                failed.append({"speaker": grid[k].speaker, "seed": grid[k].seed, "error": _one_line(exc)})
                bar.write(f"cell {grid[k].speaker} seed {grid[k].seed} failed: {failed[-1]['error']}")
            bar.update(1)
    seconds = time.perf_counter() - t0
    cpus = int(ray.cluster_resources().get("CPU", 0))
    busy = sum(r.get("seconds", 0.0) for r in done.values())
    return GridResult(
        [done[k] for k in sorted(done)],
        sorted(failed, key=lambda f: (f["speaker"], f["seed"])),
        seconds,
        cpus,
        {
            "ray_start_s": t_ray - t0,
            "feature_table_s": t_table - t_ray,
            "feature_table_mb": table.rows.nbytes / 2**20,
            # CPU time the grid held but no cell computed (scheduling, transfers, workers' first
            # imports and JIT compilation, the last cells' idle CPUs), per task
            "per_task_overhead_s": max(0.0, (seconds - (t_table - t0)) * min(cpus, len(grid)) - busy)
            / max(1, len(grid)),
        },
    )


def _warm(fixed: bool) -> None:
    """A worker's first task: the imports a cell needs (numba's compiled kernels load from its cache there)."""
    import edgetp.kws.protocol  # noqa: F401

    if fixed:
        import edgetp.kws.fixed_protocol  # noqa: F401


def _remote_cell(job, table, cell, keep_params):
    return run_cell(job, cell, cache=table, keep_params=keep_params)


def run_grid(
    job: GridJob, speakers, seeds, workers=None, address=None, progress=True, keep_first=False, on_cell=None
) -> GridResult:
    """The grid, serially or (``workers`` or ``address`` given) on Ray."""
    grid = cells(speakers, seeds)
    if workers is None and address is None:
        return run_serial(job, grid, progress, keep_first, on_cell)
    return run_ray(job, grid, workers, address, progress, keep_first, on_cell)
