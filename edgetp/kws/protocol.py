"""The paper's speaker-adaptation protocol (spec section 6) and pretraining.

Per seed: split the held-out speaker's train-split utterances (support / query, the
support resampled per seed), measure query and global-test accuracy, fine-tune a copy
of the pretrained model on the support set with TP (plus, with ``recipe.rehearsal`` > 0,
other speakers' pretraining utterances against forgetting), measure again, and train
the same architecture from scratch on the support set alone (the fine-tune-only baseline).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.kws.job import GridJob
from edgetp.kws.data import ModelInputs, check_channel_norm, check_gain, check_running_max, check_running_max_ahead
from edgetp.kws.data import speaker_data
from edgetp.kws.data import training_set
from edgetp.kws.train import Recipe, accuracy, confusion, fit
from edgetp.model import Model
from edgetp.tp import init_params
from edgetp.audio.frontend import NormConstants


def model_norm(model: Model):
    """The model's input transform (``apply(features)``): its log gain, then its normalisation."""
    if model.norm_scale is None:
        raise EdgetpError("model has no normalisation constants (norm_scale); it cannot read features")
    gain = check_gain(model.frontend.get("log_gain", 1.0), "the model's frontend log_gain")
    norm = NormConstants(model.norm_scale.astype(np.float32), bool(model.frontend.get("per_utterance", False)))
    shift = check_running_max(model.frontend.get("running_max_decay"), "the model's frontend running_max_decay")
    ahead = model.frontend.get("running_max_ahead", 0)
    ahead = check_running_max_ahead(ahead, "the model's frontend running_max_ahead")
    alpha = check_channel_norm(model.frontend.get("channel_norm", 0.0), "the model's frontend channel_norm")
    return ModelInputs(norm, gain, shift, ahead, alpha)


def cell_data(
    model: Model,
    corpus,
    speaker: str,
    shots,
    seed: int,
    recipe: Recipe,
    cache=None,
    test_limit: int | None = None,
    inputs=None,
    others: str = "testing",
):
    """The features one seed of the protocol reads (``speaker_data`` with the model's pretraining speakers,
    ``inputs``, its input stage: ``model_norm(model)`` by default, and the ``others`` list): the float and
    integer runs and the grid's feature table all select them here."""
    return speaker_data(
        corpus,
        speaker,
        shots,
        seed,
        inputs or model_norm(model),
        cache,
        test_limit,
        recipe.rehearsal,
        model.recipe.get("pretrain_speakers"),
        others,
    )


def adapt_seed(model: Model, corpus, speaker: str, shots, seed: int, recipe: Recipe, cache=None):
    """One seed of the protocol's split and the float weights fine-tuned on its support set, ``(params, data)``;
    the other speakers are not read (``detect --eval --shots`` measures the speaker's own held-out clips)."""
    d = cell_data(model, corpus, speaker, shots, seed, recipe, cache, test_limit=1)
    params = model.params.copy()
    fit(params, model.cfg, *training_set(d), replace(recipe, seed=seed), progress=False)
    return params, d


def seed_data_figures(speaker: str, seed: int, d) -> dict:
    """What every seed's figures (float or integer rule) say of its data ``d``: the sets' sizes, the other
    speakers forgetting is measured on and the classes the split dropped."""
    return {
        "speaker": speaker,
        "seed": seed,
        "support": int(len(d.support[1])),
        "query": int(len(d.query[1])),
        "test": int(len(d.test[1])),
        "rehearsal": d.n_rehearsal,
        "others": d.others,
        "others_speakers": list(d.others_speakers),
        "dropped_classes": list(d.split.dropped),
    }


def finetune_seed(job: GridJob, speaker: str, seed: int, cache=None, progress: bool = True) -> dict:
    """One seed of the protocol for ``speaker`` with the job's model and settings; returns the per-seed figures
    (accuracies in %)."""
    t0 = time.perf_counter()
    model, recipe = job.model, job.recipe
    cfg = model.cfg
    d = cell_data(model, job.corpus, speaker, job.shots, seed, recipe, cache, job.test_limit, others=job.others)
    xs, ys = d.support
    xq, yq = d.query
    xt, yt = d.test
    params = model.params.copy()
    res = {
        **seed_data_figures(speaker, seed, d),
        "query_acc_before": accuracy(params, cfg, xq, yq),
        "test_acc_before": accuracy(params, cfg, xt, yt),
    }
    hist = fit(
        params,
        cfg,
        *training_set(d),
        replace(recipe, seed=seed),
        on_epoch=lambda e, p: accuracy(p, cfg, xq, yq),
        progress=progress,
        desc=f"fine-tune seed {seed}",
    )
    res["query_acc_after"] = accuracy(params, cfg, xq, yq)
    res["test_acc_after"] = accuracy(params, cfg, xt, yt)
    res["query_acc_per_epoch"] = [res["query_acc_before"], *hist.metric]
    res["confusion_after"] = confusion(params, cfg, xq, yq, cfg.n_out).tolist()
    if job.baseline:
        scratch = init_params(cfg, seed, params.S.dtype)
        scratch.S, scratch.S_rec = (
            model.params.S.copy(),
            None if model.params.S_rec is None else model.params.S_rec.copy(),
        )
        # the fine-tune-only baseline learns from the support set alone (no rehearsal)
        fit(scratch, cfg, xs, ys, replace(recipe, seed=seed), progress=progress, desc=f"from scratch seed {seed}")
        res["finetune_only_acc"] = accuracy(scratch, cfg, xq, yq)
    res["seconds"] = time.perf_counter() - t0
    res["params"] = params
    return res


def summarize(per_seed: list[dict], speaker, shots, recipe: Recipe, model_name: str) -> dict:
    """The JSON contract: means (in %) and population std over every (speaker, seed) run, the
    per-speaker means and the per-run figures. ``speaker`` is one id or a list of ids;
    ``speaker`` in the JSON is the id, or the ids joined by commas."""
    speakers = [speaker] if isinstance(speaker, str) else list(speaker)
    keys = ["query_acc_before", "query_acc_after", "test_acc_before", "test_acc_after", "finetune_only_acc"]
    out = {
        "speaker": ",".join(speakers),
        "speakers": speakers,
        "shots": shots,
        "seeds": len({r["seed"] for r in per_seed}),
        "runs": len(per_seed),
        "model": model_name,
        "recipe": recipe.to_dict(),
    }
    for k in keys:
        vals = [r[k] for r in per_seed if k in r]
        if vals:
            out[k] = statistics.fmean(vals)
            out[k + "_std"] = statistics.pstdev(vals) if len(vals) > 1 else 0.0
    out["forgetting"] = out["test_acc_before"] - out["test_acc_after"]
    if len(speakers) > 1:
        out["per_speaker"] = {
            s: {
                k: statistics.fmean(r[k] for r in per_seed if r.get("speaker", s) == s and k in r)
                for k in keys
                if any(k in r for r in per_seed)
            }
            for s in speakers
        }
    if "others" in per_seed[0]:  # which other speakers measured forgetting (the same for every run)
        out["others"] = {
            "split": per_seed[0]["others"],
            "utterances": per_seed[0]["test"],
            "speakers": sorted({s for r in per_seed for s in r.get("others_speakers", ())}),
        }
    out["per_seed"] = [
        {k: v for k, v in r.items() if k not in ("params", "others", "others_speakers")} for r in per_seed
    ]
    return out
