"""The learning-rate schedule both training loops share (float ``edgetp.kws.train.fit`` and
integer ``edgetp.fixed.finetune.finetune_fixed``): cosine annealing stepped per epoch."""
from __future__ import annotations

import math

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
