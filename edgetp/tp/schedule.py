"""The fine-tuning schedule, once: the learning rate of each epoch (cosine annealing stepped
per epoch) and the order of the samples (one seeded permutation per epoch, cut into
batches). The float loop (``edgetp.kws.train.fit``), the integer one
(``edgetp.fixed.finetune.finetune_fixed``), verify-c's device script
(``firmware_gen.script_finetune.finetune_script``) and the HIL session (``deploy.hil.run_session``) all
take their epochs from here, so the device cannot be trained in another order than the
reference it is compared with."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgetp.errors import EdgetpError

LR_FLOOR = 0.25  # the paper anneals to 0.25 * lr
SCHEDULES = ("cosine", "constant")


def cosine_lr(lr: float, epoch: int, epochs: int, floor: float = LR_FLOOR) -> float:
    """PyTorch CosineAnnealingLR stepped per epoch, T_max = epochs, eta_min = floor*lr."""
    eta_min = floor * lr
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * epoch / max(1, epochs))) / 2


def epoch_lrs(lr: float, epochs: int, lr_min_ratio: float = LR_FLOOR, schedule: str = "cosine") -> list[float]:
    """Learning rate of each epoch: cosine annealing to lr_min_ratio * lr, or constant."""
    if schedule not in SCHEDULES:
        raise EdgetpError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    if schedule == "constant":
        return [lr] * epochs
    return [cosine_lr(lr, e, epochs, lr_min_ratio) for e in range(epochs)]


@dataclass(frozen=True)
class Epoch:
    """One epoch of a fine-tuning run: its learning rate (None: the device's built-in rate)
    and its batches in training order (each an array of sample indices, sorted)."""

    index: int
    lr: float | None
    batches: list


def epoch_batches(rng: np.random.Generator, n: int, batch: int = 1) -> list:
    """An epoch's batches: one permutation of ``n`` samples drawn from ``rng``, cut into
    ``batch``-sized pieces, each sorted (a batch is a set; sorting fixes its order)."""
    perm = rng.permutation(n)
    return [np.sort(perm[i : i + batch]) for i in range(0, n, batch)]


def finetune_epochs(
    n: int,
    epochs: int,
    seed: int,
    batch: int = 1,
    lr: float | None = None,
    lr_min_ratio: float = LR_FLOOR,
    schedule: str = "cosine",
) -> list[Epoch]:
    """Every epoch of a fine-tuning run on ``n`` support samples: ``epoch_lrs`` and one
    ``np.random.default_rng(seed)`` drawing each epoch's ``epoch_batches``. ``lr`` None leaves
    the rate to the device (``Epoch.lr`` None)."""
    if n < 1 or epochs < 0 or batch < 1:
        raise EdgetpError(
            f"a fine-tuning run needs samples >= 1, epochs >= 0 and batch >= 1, got {n}, {epochs}, {batch}"
        )
    lrs = [None] * epochs if lr is None else epoch_lrs(lr, epochs, lr_min_ratio, schedule)
    rng = np.random.default_rng(seed)
    return [Epoch(e, lrs[e], epoch_batches(rng, n, batch)) for e in range(epochs)]
