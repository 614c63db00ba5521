"""Entry points for the CLI: integer fine-tuning and evaluation (speed: edgetp.fixed.bench).

``finetune_fixed`` runs the fine-tuning protocol of the float path with the integer
rule: quantize (unless given a QModel), then ``epochs`` passes over the support set in a
seeded random order, ``batch`` samples per sequence, one integer update per time step
(or per ``update_every`` steps: the steps t % update_every == 0 of each sample), learning
rate cosine-annealed per epoch to ``lr_min_ratio * lr``. The per-epoch learning rates are
turned into integer codes (8-bit mantissa, power-of-two exponent) before training starts;
nothing on the training path reads a float.
"""

from __future__ import annotations

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.network_q import TARGETS, check_update_every, predict_q, train_sequence_q
from edgetp.fixed.qconfig import QModel
from edgetp.fixed.quantize import quantize_inputs, quantize_model
from edgetp.fixed.update_q import QOpt, check_kind, lr_code
from edgetp.tp.config import DEFAULT_BETA_SHIFT, DEFAULT_LR
from edgetp.tp.schedule import LR_FLOOR, finetune_epochs


def as_qmodel(model, calib_x=None, wbits: int = 16, xbits: int = 16) -> QModel:
    """A copy of ``model`` if it is already integer, else ``model`` quantized on ``calib_x``."""
    if isinstance(model, QModel):
        return model.copy()
    if calib_x is None:
        raise EdgetpError("quantizing a float model needs calibration features")
    return quantize_model(model, calib_x, wbits=wbits, xbits=xbits)


def to_int_inputs(qm: QModel, xs) -> np.ndarray:
    """Float features are quantized to the model's input format; integer ones pass through."""
    xs = np.asarray(xs)
    if xs.dtype.kind == "f":
        return quantize_inputs(xs, qm.fx, qm.xbits)
    return xs.astype(qm.xdtype, copy=False)


def finetune_fixed(
    model,
    support_x,
    support_y,
    epochs: int = 3,
    lr: float = DEFAULT_LR,
    optimizer: str = "colnorm",
    targets: str = "classes",
    batch: int = 1,
    seed: int = 0,
    wbits: int = 16,
    lr_min_ratio: float = LR_FLOOR,
    schedule: str = "cosine",
    beta_shift: int = DEFAULT_BETA_SHIFT,
    clip: int = -1,
    train: str = "all",
    calib_x=None,
    opt: QOpt | None = None,
    on_epoch=None,
    update_every: int = 1,
) -> QModel:
    """Fine-tune ``model`` (float :class:`edgetp.model.Model` or :class:`QModel`) on the support
    set with the integer rule; returns the fine-tuned integer model (``model`` is not changed).

    Batches and their order are ``edgetp.tp.schedule.finetune_epochs``', as in the float loop.
    ``on_epoch(epoch, qmodel)`` is called after each epoch."""
    check_kind(optimizer)
    if targets not in TARGETS:
        raise EdgetpError(f"targets must be one of {TARGETS}, got {targets!r}")
    if batch < 1 or epochs < 0:
        raise EdgetpError(f"batch must be >= 1 and epochs >= 0, got {batch}, {epochs}")
    update_every = check_update_every(update_every)
    qm = as_qmodel(model, support_x if calib_x is None else calib_x, wbits)
    xs = to_int_inputs(qm, support_x)
    ys = np.asarray(support_y, dtype=np.int64)
    if len(xs) != len(ys) or len(xs) == 0:
        raise EdgetpError(f"support set has {len(xs)} sequences and {len(ys)} labels")
    opt = opt or QOpt.make(optimizer, lr, seed, beta_shift, clip)
    for ep in finetune_epochs(len(ys), epochs, seed, batch, lr, lr_min_ratio, schedule):
        opt.lr_m, opt.lr_e = lr_code(ep.lr)
        for idx in ep.batches:
            train_sequence_q(qm, xs[idx], ys[idx], opt, targets, train, update_every)
        if on_epoch is not None:
            on_epoch(ep.index, qm)
    return qm


def evaluate_fixed(qm: QModel, xs, ys) -> float:
    """Integer inference accuracy on ``xs`` (float features are quantized first)."""
    ys = np.asarray(ys)
    if len(ys) == 0:
        raise EdgetpError("nothing to evaluate")
    return float(np.mean(predict_q(qm, to_int_inputs(qm, xs)) == ys))
