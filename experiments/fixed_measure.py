"""Float TP vs integer TP on a speaker-adaptation task: the figures of docs/fixed-point.md.

An experiment, not part of the installed package (run from the repository root):

    python3 experiments/fixed_measure.py synthetic --hidden 128 --seeds 8
    python3 experiments/fixed_measure.py kws --model kws-mcu --seeds 3

Per seed, the same pretrained model, support set, order and seed are fine-tuned by the
float reference (``edgetp.kws.train.fit``) and by the integer rule (``finetune_fixed``);
both are scored on the query set. The quantized model's inference accuracy is compared
with the float model's on a calibration/test set first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import statistics
import time

from edgetp.fixed.finetune import evaluate_fixed, finetune_fixed
from edgetp.fixed.quantize import format_report, quantize_model
from edgetp.kws.train import Recipe, accuracy, fit
from edgetp.threads import single_threaded_blas


def pretrain_synthetic(task, hidden: int, epochs: int = 12, lr: float = 3e-4, seed: int = 1):
    """The float model the synthetic measurements start from (batch rule, B = 32, Adam)."""
    from edgetp.model import Model
    from edgetp.tp import NetConfig, init_params

    cfg = NetConfig(task.pre_x.shape[2], (hidden,), int(task.pre_y.max()) + 1, recurrent=True)
    params = init_params(cfg, seed)
    fit(
        params,
        cfg,
        task.pre_x,
        task.pre_y,
        Recipe(epochs=epochs, lr=lr, batch=32, targets="batch", schedule="constant", seed=seed),
        progress=False,
    )
    return Model(cfg, params, [str(i) for i in range(cfg.n_out)])


def compare(model, data, calib, seeds: int, runs: list[tuple], epochs: int = 3) -> dict:
    """``data(seed) -> (support, query)``, each an (x, y) pair; ``runs``: (name, kind, optimizer,
    lr, wbits, clip) with kind 'float' or 'int'."""
    out = {"quantized": {}, "runs": {}}
    for wb in sorted({r[4] for r in runs if r[1] == "int"}):  # the quantizer's report per width
        qm = quantize_model(model, *calib, wbits=wb)
        out["quantized"][wb] = {k: v for k, v in qm.report.items() if k != "weights"}
        print(format_report(qm.report), flush=True)
    out["float_before"] = [accuracy(model.params, model.cfg, *data(seed)[1]) for seed in range(seeds)]
    for name, kind, optimizer, lr, wb, clip in runs:
        accs, secs = [], []
        for seed in range(seeds):
            support, query = data(seed)
            t0 = time.perf_counter()
            if kind == "float":
                p = model.params.copy()
                fit(
                    p, model.cfg, *support, Recipe(epochs=epochs, lr=lr, optimizer=optimizer, seed=seed), progress=False
                )
                accs.append(accuracy(p, model.cfg, *query))
            else:
                qm = finetune_fixed(
                    model,
                    *support,
                    epochs=epochs,
                    lr=lr,
                    optimizer=optimizer,
                    seed=seed,
                    wbits=wb,
                    calib_x=calib[0],
                    clip=clip,
                )
                accs.append(100.0 * evaluate_fixed(qm, *query))
            secs.append(time.perf_counter() - t0)
        r = {
            "mean": statistics.fmean(accs),
            "std": statistics.pstdev(accs),
            "per_seed": accs,
            "seconds_per_run": statistics.median(secs),
        }
        out["runs"][name] = r
        print(
            f"{name:28s} query {r['mean']:6.2f} ± {r['std']:.2f} %  {[round(a, 1) for a in accs]}  "
            f"({r['seconds_per_run']:.1f} s/run)",
            flush=True,
        )
    return out


RUNS = {
    "float adam": ("float", "adam", 1e-4, None, None),
    "float sgd": ("float", "sgd", 1e-3, None, None),
    "float colnorm": ("float", "colnorm", 1e-4, None, None),
    "int16 colnorm": ("int", "colnorm", 1e-4, 16, -1),
    "float rownorm": ("float", "rownorm", 1e-4, None, None),
    "int16 rownorm": ("int", "rownorm", 1e-4, 16, -1),
    "int16 sgd": ("int", "sgd", 1e-3, 16, -1),
}  # the factored rows of docs/fixed-point.md were measured before that rule was removed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", choices=("synthetic", "kws"))
    ap.add_argument("--hidden", type=int, default=128, help="synthetic: hidden neurons (recurrent)")
    ap.add_argument("--model", default="kws-mcu", help="kws: model name or file")
    ap.add_argument("--speaker", help="kws: held-out speaker (default: the model's)")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of: {', '.join(RUNS)}")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)
    runs = [(n, *RUNS[n.strip()]) for n in a.runs.split(",")]
    if a.task == "synthetic":
        from synthetic_task import make_task  # experiments/synthetic_task.py, beside this script

        task = make_task()
        model = pretrain_synthetic(task, a.hidden)
        calib = (task.pre_x, task.pre_y)
        data = lambda seed: ((task.sup_x, task.sup_y), (task.qry_x, task.qry_y))
    else:
        from edgetp.kws.data import open_corpus, speaker_data
        from edgetp.kws.protocol import model_norm
        from edgetp.model import load_model

        model = load_model(a.model)
        corpus = open_corpus(None, model.frontend.get("label_set", "paper"))
        speaker = a.speaker or model.recipe.get("held_out_speaker")
        splits = {}

        def data(seed):  # the support set is resampled per seed, as in `edgetp finetune --kws`
            if seed not in splits:
                splits[seed] = speaker_data(corpus, speaker, a.shots, seed, model_norm(model), None, 2000)
            return splits[seed].support, splits[seed].query

        calib = speaker_data(corpus, speaker, a.shots, 0, model_norm(model), None, 2000).test
    with single_threaded_blas():
        out = compare(model, data, calib, a.seeds, runs)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
