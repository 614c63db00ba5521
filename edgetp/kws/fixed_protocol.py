"""The speaker-adaptation protocol with the integer-only rule (`finetune --kws --fixed`).

Same split, seeds, support order and schedule as :mod:`edgetp.kws.protocol`; the model
is quantized once (calibration: pretraining utterances, never the held-out speaker),
then fine-tuned and evaluated with integer arithmetic only. Adam maps to the integer
rule's default ``colnorm`` update (docs/fixed-point.md, section 6.3); sgd, rownorm and
colnorm map to themselves.
"""

from __future__ import annotations

import time

import numpy as np

from edgetp.kws.data import IntInputs, labelled, pretrain_pool, training_set
from edgetp.kws.job import GridJob
from edgetp.kws.protocol import cell_data, model_norm, seed_data_figures
from edgetp.kws.train import Recipe
from edgetp.model import Model

from firmware_gen.defaults import DEFAULTS
from edgetp.audio.frontend_q import InputNorm
from edgetp.data.cache import Frontend
from edgetp.fixed.finetune import evaluate_fixed, finetune_fixed, to_int_inputs
from edgetp.fixed.network_q import predict_q
from edgetp.fixed.quantize import input_bits, quantize_model
from edgetp.tp import init_params

CALIBRATION = 256  # pretraining utterances used to choose the input format
WBITS = DEFAULTS["wbits"]


def calibration(model: Model, corpus, speaker: str, cache=None) -> np.ndarray:
    pool = np.array([i for i in corpus.select(split="train") if corpus.utterances[i].speaker != speaker])
    pool = pretrain_pool(corpus, pool, (model.recipe or {}).get("pretrain_speakers"))
    return labelled(corpus, pool, model_norm(model), cache, limit=CALIBRATION, seed=0)[0]


def device_qmodel(model: Model, corpus, speaker: str, cache=None):
    """The integer model the device runs: the model's recorded ``recipe["fixed"]`` settings
    (the same quantization `export --c` / `hil` use), else calibrated on pretraining data."""
    if (model.recipe or {}).get("fixed"):
        from firmware_gen.qmodel import qmodel_for

        return qmodel_for(model)[0]
    return quantize_model(model, calibration(model, corpus, speaker, cache), wbits=WBITS)


def fixed_settings(model: Model, corpus, speaker: str, cache=None) -> dict:
    """The ``recipe["fixed"]`` entry to record in a model file (`edgetp pretrain --record-fixed`):
    the device defaults with the input format calibrated on pretraining utterances."""
    fx = input_bits(calibration(model, corpus, speaker, cache), xbits=DEFAULTS["xbits"])
    return {**DEFAULTS, "fx": int(fx), "targets": "classes"}


def model_inputs(model: Model, qm, frontend: str = "float"):
    """The input stage of ``finetune --fixed``: the float frontend and the model's normalisation
    (inputs quantized afterwards), or ("fixed") the integer frontend and normalisation the device
    runs on raw audio, for ``qm``'s input format."""
    if frontend == "float":
        return model_norm(model)
    Frontend(frontend)  # an unknown name is an EdgetpError
    return IntInputs(InputNorm.for_model(model, qm))


def adapt_seed_fixed(model: Model, corpus, speaker: str, shots, seed: int, recipe: Recipe, cache=None):
    """``adapt_seed`` with the integer rule: ``(tuned QModel, data)``, the device's fine-tuning of one seed."""

    qm = device_qmodel(model, corpus, speaker, cache)
    d = cell_data(model, corpus, speaker, shots, seed, recipe, cache, 1, model_inputs(model, qm))
    return _tune(qm, *training_set(d), recipe, seed), d


def _int_kind(recipe: Recipe) -> str:
    return "colnorm" if recipe.optimizer == "adam" else recipe.optimizer


def _tune(qm, x, y, recipe: Recipe, seed: int, on_epoch=None):
    """The integer rule's fine-tuning of ``qm`` on ``(x, y)`` with the recipe's schedule, seeded by ``seed``."""
    return finetune_fixed(
        qm,
        x,
        y,
        recipe.epochs,
        recipe.lr,
        _int_kind(recipe),
        recipe.targets,
        recipe.batch,
        seed,
        WBITS,
        train=recipe.train,
        on_epoch=on_epoch,
        update_every=recipe.update_every,
    )


def finetune_seed_fixed(job: GridJob, speaker: str, seed: int, cache=None, progress: bool = True) -> dict:
    """``finetune_seed`` with the integer rule on the device's quantized model, fed by the job's frontend."""
    t0 = time.perf_counter()
    model, recipe = job.model, job.recipe
    qm = device_qmodel(model, job.corpus, speaker, cache)
    inputs = model_inputs(model, qm, job.frontend)
    d = cell_data(model, job.corpus, speaker, job.shots, seed, recipe, cache, job.test_limit, inputs, job.others)
    (xs, ys), (xq, yq), (xt, yt) = d.support, d.query, d.test
    acc = lambda q, x, y: 100.0 * evaluate_fixed(q, x, y) if len(y) else float("nan")
    per_epoch = [acc(qm, xq, yq)]
    res = {
        **seed_data_figures(speaker, seed, d),
        "query_acc_before": per_epoch[0],
        "test_acc_before": acc(qm, xt, yt),
        "wbits": qm.wbits,
        "int_optimizer": _int_kind(recipe),
    }
    if qm.frozen_hidden:  # the hidden layers stay in flash at their own width; the readout alone learns
        res.update(hbits=qm.hbits, frozen_hidden=True, **({"row_scales": True} if qm.row_scales else {}))
    tuned = _tune(qm, *training_set(d), recipe, seed, on_epoch=lambda e, q: per_epoch.append(acc(q, xq, yq)))
    res.update(query_acc_after=acc(tuned, xq, yq), test_acc_after=acc(tuned, xt, yt), query_acc_per_epoch=per_epoch)
    cm = np.zeros((model.cfg.n_out,) * 2, dtype=np.int64)
    np.add.at(cm, (yq, predict_q(tuned, to_int_inputs(tuned, xq))), 1)
    res["confusion_after"] = cm.tolist()
    if job.baseline:
        from edgetp.fixed.qconfig import from_float

        scratch = init_params(model.cfg, seed, np.float32)
        scratch.S, scratch.S_rec = model.params.S, model.params.S_rec
        q0 = from_float(
            model.cfg,
            scratch,
            qm.fx,
            qm.wbits,
            1.0,
            list(model.labels),
            qm.xbits,
            qm.hbits,
            qm.frozen_hidden,
            qm.row_scales,
        )  # the same device: a frozen random hidden layer
        res["finetune_only_acc"] = acc(_tune(q0, xs, ys, recipe, seed), xq, yq)
    res["seconds"] = time.perf_counter() - t0
    res["params"] = tuned
    return res
