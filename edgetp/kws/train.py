"""Training loops over feature arrays: epochs, shuffling, cosine schedule, evaluation.

The TP rule itself is in :mod:`edgetp.tp`; this module only decides which samples go
into which batch and at what learning rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from edgetp.errors import EdgetpError
from edgetp.settings import setting
from edgetp.threads import blas_single_threaded
from edgetp.tp import NetConfig, Optimizer, Params, predict, train_sequence
from edgetp.tp.propagator import get_cache
from edgetp.tp.config import DEFAULT_LR, TARGETS, TRAIN_MODES, check_update_every
from edgetp.tp.network import OPTIMIZERS
from edgetp.tp.schedule import SCHEDULES, epoch_batches, epoch_lrs


@dataclass
class Recipe:
    """How to train: everything `pretrain`/`finetune` expose, recorded in model files; each default declared here
    once (the CLI's options, recipe files and `pretrain --ft` read this declaration: edgetp.settings)."""

    epochs: int = setting(3, "passes over the support set, lr cosine-annealed per epoch", lo=0)
    lr: float = setting(DEFAULT_LR, "learning rate of the first epoch", lo=0)
    optimizer: str = setting(
        "adam",
        "adam, sgd, rownorm or colnorm (per-neuron / per-input RMS normalisation: the "
        "float twins of the integer rule's updates; --fixed maps adam to colnorm)",
        choices=OPTIMIZERS,
    )
    batch: int = setting(1, "utterances per update", lo=1)
    targets: str = setting("classes", "target set", choices=TARGETS)
    train: str = setting("all", "layers that learn", choices=TRAIN_MODES)
    schedule: str = setting("cosine", "learning rate over the epochs", choices=SCHEDULES)
    seed: int = setting(0, "training order and initial weights")
    shift: int = setting(
        0, "augmentation: a random time shift of up to +-N frames (zero-filled; float rule only)", lo=0
    )
    noise: float = setting(0.0, "augmentation: Gaussian feature noise of this std (float rule only)", lo=0)
    rehearsal: float = setting(
        0.0,
        "fine-tuning: mix in this many other-speaker pretraining utterances per support utterance, against forgetting",
        lo=0,
    )
    warp: float = setting(
        0.0,
        "augmentation: a mel-axis (vocal-tract-length) warp by a random factor in 1 +- W (float rule only)",
        lo=0,
        hi=0.5,
        hi_open=True,
    )
    time_mask: int = setting(
        0,
        "augmentation: zero (silence) a random run of up to N frames of each utterance (SpecAugment's "
        "time mask; float rule only)",
        lo=0,
    )
    freq_mask: int = setting(
        0,
        "augmentation: zero a random run of up to N of the mel bands, in the log-mel and both deltas alike "
        "(SpecAugment's frequency mask; float rule only)",
        lo=0,
    )
    update_every: int = setting(
        1,
        "learn on the steps t % K == 0 of each sample (t from 0 at its start; the other "
        "frames run the forward pass only)",
        lo=1,
    )

    def check(self) -> None:
        if self.epochs < 0 or self.batch < 1:
            raise EdgetpError("epochs must be >= 0 and batch >= 1")
        if self.targets not in TARGETS:
            raise EdgetpError(f"targets must be batch or classes, got {self.targets!r}")
        if self.train not in TRAIN_MODES:
            raise EdgetpError(f"train must be all or readout, got {self.train!r}")
        if not (math.isfinite(self.rehearsal) and self.rehearsal >= 0):
            raise EdgetpError(f"rehearsal must be a number >= 0, got {self.rehearsal}")
        if self.schedule not in SCHEDULES:
            raise EdgetpError(f"schedule must be cosine or constant, got {self.schedule!r}")
        check_update_every(self.update_every)
        check_augment(self.shift, self.noise, self.warp, self.time_mask, self.freq_mask)
        Optimizer(self.optimizer, self.lr)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# the Recipe fields a fine-tuning recipe sets (finetune's recipe file, `pretrain --ft`): not the schedule (the device
# anneals by cosine) nor the seed (finetune's seeds are its cells)
FINETUNE_FIELDS = (
    "epochs",
    "lr",
    "optimizer",
    "batch",
    "targets",
    "train",
    "rehearsal",
    "update_every",
    "shift",
    "noise",
    "warp",
    "time_mask",
    "freq_mask",
)
PRETRAIN_OPTIMIZERS = ("adam", "sgd")  # pretraining's rules (the normalised ones are the integer rule's float twins)
AUGMENT = ("shift", "noise", "warp", "time_mask", "freq_mask")  # the Recipe fields that augment what fit trains on


def augment_words(rec: dict) -> str:
    """A recipe's augmentation for reports: "augmented (shift 8, noise 0.4)"; "" when it has none."""
    parts = [f"{k} {rec[k]:g}" for k in AUGMENT if rec.get(k)]
    return f"augmented ({', '.join(parts)})" if parts else ""


def check_augment(shift, noise, warp, time_mask=0, freq_mask=0, names=AUGMENT) -> None:
    """The augmentation settings' ranges; ``names`` are how the caller's user spells them."""
    number = lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    whole = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    if not (whole(shift) and shift >= 0):
        raise EdgetpError(f"{names[0]} must be a whole number of frames >= 0, got {shift!r}")
    if not (number(noise) and math.isfinite(noise) and noise >= 0):
        raise EdgetpError(f"{names[1]} must be a number >= 0, got {noise!r}")
    if not (number(warp) and math.isfinite(warp) and 0.0 <= warp < 0.5):
        raise EdgetpError(f"{names[2]} must be in [0, 0.5), got {warp!r}")
    if not (whole(time_mask) and time_mask >= 0):
        raise EdgetpError(f"{names[3]} must be a whole number of frames >= 0, got {time_mask!r}")
    if not (whole(freq_mask) and freq_mask >= 0):
        raise EdgetpError(f"{names[4]} must be a whole number of mel bands >= 0, got {freq_mask!r}")


@dataclass
class History:
    lr: list = field(default_factory=list)
    metric: list = field(default_factory=list)


def mel_warp(xs: np.ndarray, factors, bands: int = 40) -> np.ndarray:
    """Vocal-tract-length perturbation on features: band ``b`` of each ``bands``-wide block
    ([log-mel, Δ, ΔΔ]) takes the value at band ``b * factor`` (linear interpolation, clamped).
    Deltas are linear over time, so warping them equals the deltas of the warped log-mel."""
    out = np.empty_like(xs)
    pos = np.arange(bands, dtype=np.float64)
    for i, f in enumerate(factors):
        src = np.clip(pos * f, 0, bands - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, bands - 1)
        w = (src - lo).astype(xs.dtype)
        for k in range(0, xs.shape[-1], bands):
            blk = xs[i, :, k : k + bands]
            out[i, :, k : k + bands] = blk[:, lo] * (1 - w) + blk[:, hi] * w
    return out


def runs(rng, n: int, length: int, longest: int) -> np.ndarray:
    """(n, length) booleans: in each row a run of a random width 0..``longest`` (clipped to ``length``) at a random
    start, SpecAugment's masks (Park et al. 2019) drawn one per utterance."""
    w = rng.integers(0, min(longest, length) + 1, n)
    start = rng.integers(0, length - w + 1)
    pos = np.arange(length)
    return (pos >= start[:, None]) & (pos < (start + w)[:, None])


def augment(
    xs: np.ndarray, rng, shift: int, noise: float, warp: float = 0.0, time_mask: int = 0, freq_mask: int = 0
) -> np.ndarray:
    """Warp each sequence's mel axis, shift it in time (zero-filled), mask a run of frames and a run of mel bands
    (to 0: no energy above the floor and no change, as the zero-filled shift; the same bands of each
    [log-mel, Δ, ΔΔ] block) and add feature noise;
    a new array. Each augmentation draws from ``rng`` only when it is on, so recipes without it replay as before."""
    if warp:
        xs = mel_warp(xs, rng.uniform(1 - warp, 1 + warp, len(xs)))
    out = np.zeros_like(xs)
    T = xs.shape[1]
    for i, k in enumerate(rng.integers(-shift, shift + 1, len(xs)) if shift else np.zeros(len(xs), int)):
        if k >= 0:
            out[i, k:] = xs[i, : T - k]
        else:
            out[i, : T + k] = xs[i, -k:]
    if time_mask:
        out[runs(rng, len(xs), T, time_mask)] = 0
    if freq_mask:
        bands = runs(rng, len(xs), xs.shape[-1] // 3, freq_mask)  # features are 3 blocks: [log-mel, Δ, ΔΔ]
        out *= ~np.tile(bands, 3)[:, None, :]
    if noise:
        out += rng.normal(0.0, noise, out.shape).astype(out.dtype)
    return out


@blas_single_threaded
def fit(
    params: Params,
    cfg: NetConfig,
    xs: np.ndarray,
    ys: np.ndarray,
    recipe: Recipe,
    on_epoch=None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train ``params`` in place on (N, T, F) features with TP, one update per time step.

    ``on_epoch(epoch, params) -> float | None`` is called after each epoch (e.g. to
    measure accuracy); its values are returned in ``History.metric``.
    """
    recipe.check()
    if len(xs) == 0:
        raise EdgetpError("no training samples")
    ys = np.asarray(ys, dtype=np.int64)
    rng = np.random.default_rng(recipe.seed)
    opt = Optimizer(recipe.optimizer, recipe.lr)
    prop = get_cache(None, params, cfg, xs.dtype)
    hist = History()
    n_batches = math.ceil(len(xs) / recipe.batch)
    bar = tqdm(total=recipe.epochs * n_batches, desc=desc, unit="batch", disable=not progress, leave=False)
    for epoch, lr in enumerate(epoch_lrs(recipe.lr, recipe.epochs, schedule=recipe.schedule)):
        opt.lr = lr
        hist.lr.append(opt.lr)
        for idx in epoch_batches(rng, len(xs), recipe.batch):  # the permutation first, then augmentation draws
            xb = np.ascontiguousarray(xs[idx])
            if any(getattr(recipe, k) for k in AUGMENT):
                xb = augment(xb, rng, recipe.shift, recipe.noise, recipe.warp, recipe.time_mask, recipe.freq_mask)
            train_sequence(
                params, xb, ys[idx], cfg, opt, recipe.targets, recipe.train, prop=prop, update_every=recipe.update_every
            )
            bar.update(1)
        if on_epoch is not None:
            hist.metric.append(on_epoch(epoch, params))
    bar.close()
    return hist


def accuracy(params: Params, cfg: NetConfig, xs: np.ndarray, ys: np.ndarray) -> float:
    """Top-1 accuracy in % (argmax of the readout at the last step)."""
    if len(xs) == 0:
        return float("nan")
    return float(100.0 * np.mean(predict(params, xs, cfg) == np.asarray(ys)))


def confusion(params: Params, cfg: NetConfig, xs: np.ndarray, ys: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(ys), predict(params, xs, cfg)), 1)
    return m
