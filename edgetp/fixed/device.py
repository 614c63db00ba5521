"""The integer reference shaped like the device: :class:`RefDevice` is driven exactly as the C API is
(``etp_init``, ``etp_reset``, ``etp_infer_step``, ``etp_train_step``, ``etp_set_lr``, ``etp_set_optimizer``:
batch 1, one frame per call), so a host can replay on it what it sends to a device. :class:`DeviceConfig` is what
the device is exported with besides the model, checked as the C checks it.

The device's tensor table (the order and dtypes of the state a host reads back) is the generator's:
``firmware_gen.tensors.TableDevice`` adds it to :class:`RefDevice`.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.contract import DEVICE_CLIP, DEVICE_LR_MIN, DEVICE_OPTIMIZER, OPT_CFG_RANGES
from edgetp.fixed.network_q import check_update_every, infer_step_q, init_state_q, train_step_q
from edgetp.fixed.primitives import prng_seed
from edgetp.fixed.qconfig import QModel
from edgetp.fixed.update_q import QOpt, check_kind, lr_code
from edgetp.tp.config import DEFAULT_BETA_SHIFT, DEFAULT_LR, TARGETS, TRAIN_MODES

STEPS_MAX = 2**32 - 1  # the device's step counters (steps, tsteps, opt_steps) are uint32
FROZEN_TRAIN = "a frozen-hidden device learns the readout only (train 'readout', train_all 0)"


def n_targets(qm: QModel, targets: str) -> int:
    """Rows of the target set on the device (batch size 1): O for "classes", 1 for "batch",
    0 for a frozen-hidden model (no target set)."""
    if targets not in TARGETS:
        raise EdgetpError(f"targets must be one of {TARGETS}, got {targets!r}")
    if qm.frozen_hidden:
        return 0
    return qm.cfg.n_out if targets == "classes" else 1


def lr_le(m: int, e: int, m2: int, e2: int) -> bool:
    """m * 2^-e <= m2 * 2^-e2, exactly (learning-rate codes, m and m2 in 0..255)."""
    return Fraction(int(m)) / Fraction(2) ** int(e) <= Fraction(int(m2)) / Fraction(2) ** int(e2)


@dataclasses.dataclass
class DeviceConfig:
    """What the device is exported with besides the model: target set, optimizer defaults and
    ``update_every`` (ETP_UPDATE_EVERY: etp_train_step learns on the steps t % k == 0 since the reset)."""

    targets: str = "classes"
    optimizer: str = DEVICE_OPTIMIZER
    lr: float = DEFAULT_LR
    beta_shift: int = DEFAULT_BETA_SHIFT
    train: str = "all"
    clip: int = DEVICE_CLIP  # normalised rules: |move| <= 2^clip * lr per weight; -1: no limit
    lr_min: float = DEVICE_LR_MIN  # etp_set_lr (SET_LR) accepts lr_min <= lr <= lr_max only (ETP_LR_MIN/MAX_*)
    lr_max: float | None = None  # None: the export's lr
    update_every: int = 1  # a compile-time constant of the export (the model's recipe["finetune"])
    frozen_hidden: bool = False  # hidden layers constant in flash, readout learns (train "readout" only)

    def __post_init__(self):
        if self.frozen_hidden and self.train != "readout":
            raise EdgetpError(
                f"--frozen-hidden needs --train readout (the hidden layers cannot learn), got train {self.train!r}"
            )
        self.update_every = check_update_every(self.update_every)
        if self.update_every > STEPS_MAX:  # the device counts steps in a uint32
            raise EdgetpError(f"update every must be at most {STEPS_MAX} on the device, got {self.update_every}")
        if self.lr_max is None:
            self.lr_max = self.lr
        lo, hi = lr_code(self.lr_min), lr_code(self.lr_max)
        if not lr_le(*lo, *self.lr_code) or not lr_le(*self.lr_code, *hi):
            raise EdgetpError(
                f"the learning rate {self.lr:g} must lie in [lr_min, lr_max] = [{self.lr_min:g}, {self.lr_max:g}]"
            )
        check_kind(self.optimizer)
        if self.targets not in TARGETS or self.train not in TRAIN_MODES:
            raise EdgetpError(f"targets must be one of {TARGETS}, train one of {TRAIN_MODES}")
        for name, v in (("beta_shift", self.beta_shift), ("clip", self.clip)):  # the C checks the same ranges
            lo, hi = OPT_CFG_RANGES[name]
            if not lo <= int(v) <= hi:
                note = " (-1: no limit)" if name == "clip" else ""
                raise EdgetpError(f"{name.replace('_', ' ')} must be in {lo}..{hi}{note}, got {v}")
        lr_code(self.lr)

    @property
    def lr_code(self) -> tuple[int, int]:
        return lr_code(self.lr)

    def lr_in_range(self, lr_m: int, lr_e: int) -> bool:
        """Whether etp_set_lr accepts the code (lr_m, lr_e): lr_m, lr_e in the contract's ranges and
        lr_code(lr_min) <= lr_m * 2^-lr_e <= lr_code(lr_max), compared exactly (its C twin:
        lr_in_range in etp_api.c, over ETP_LR_MIN_M/E and ETP_LR_MAX_M/E)."""
        return (
            OPT_CFG_RANGES["lr_m"][0] <= int(lr_m) <= OPT_CFG_RANGES["lr_m"][1]
            and OPT_CFG_RANGES["lr_e"][0] <= int(lr_e) <= OPT_CFG_RANGES["lr_e"][1]
            and lr_le(*lr_code(self.lr_min), lr_m, lr_e)
            and lr_le(lr_m, lr_e, *lr_code(self.lr_max))
        )


def default_device(qm: QModel) -> DeviceConfig:
    """The default settings for ``qm``: DeviceConfig(), readout-only for a frozen-hidden model."""
    return DeviceConfig(train="readout", frozen_hidden=True) if qm.frozen_hidden else DeviceConfig()


def check_frozen(qm: QModel, dev: DeviceConfig) -> None:
    """The device settings and the integer model agree on the frozen-hidden mode."""
    if bool(dev.frozen_hidden) != qm.frozen_hidden:
        have = "is" if qm.frozen_hidden else "is not"
        raise EdgetpError(
            f"the integer model {have} frozen-hidden but the device settings say frozen_hidden "
            f"{dev.frozen_hidden}: quantize and export with the same --frozen-hidden"
        )


class RefDevice:
    """The integer reference behind the C API: ``init``, ``reset``, ``infer``, ``train``, ``set_lr``,
    ``set_optimizer``, ``predict`` (batch 1, the device's target set)."""

    def __init__(self, qm: QModel, cfg: DeviceConfig | None = None):
        self.cfg = cfg or default_device(qm)
        check_frozen(qm, self.cfg)
        self.qm0 = qm.copy()
        self.K = n_targets(qm, self.cfg.targets)
        self.init(0)

    def init(self, seed: int) -> None:
        self.qm = self.qm0.copy()
        m, e = self.cfg.lr_code
        self.opt = QOpt(
            self.cfg.optimizer,
            m,
            e,
            int(self.cfg.beta_shift),
            np.array([prng_seed(seed)], dtype=np.uint32),
            clip=int(self.cfg.clip),
        )
        self.train_mode = self.cfg.train
        self.reset()

    def reset(self) -> None:
        self.state = init_state_q(self.qm, 1, self.K)

    def _x(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.shape != (self.qm.cfg.n_in,):
            raise EdgetpError(f"one frame has {self.qm.cfg.n_in} features, got shape {x.shape}")
        return np.ascontiguousarray(x.astype(self.qm.xdtype)[None])

    def infer(self, x) -> None:
        self.state = infer_step_q(self.qm, self.state, self._x(x))

    def train(self, x, label: int) -> None:
        if not 0 <= int(label) < self.qm.cfg.n_out:
            raise EdgetpError(f"label {label} out of range")
        self.state = train_step_q(
            self.qm,
            self.state,
            self._x(x),
            np.array([int(label)], dtype=np.int64),
            self.opt,
            self.cfg.targets,
            self.train_mode,
            update_every=self.cfg.update_every,
        )

    def set_lr(self, lr_m: int, lr_e: int) -> None:
        if not self.cfg.lr_in_range(lr_m, lr_e):  # etp_set_lr answers ETP_EBADARG
            raise EdgetpError(
                f"learning-rate code ({lr_m}, {lr_e}) = {int(lr_m) * 2.0 ** -int(lr_e):g} is outside "
                f"the export's range [{self.cfg.lr_min:g}, {self.cfg.lr_max:g}]"
            )
        self.opt.lr_m, self.opt.lr_e = int(lr_m), int(lr_e)

    def set_optimizer(self, kind: str, beta_shift: int, train: str, clip: int = -1) -> None:
        if self.cfg.frozen_hidden and train != "readout":  # etp_set_optimizer answers ETP_EBADARG
            raise EdgetpError(FROZEN_TRAIN)
        self.opt.kind, self.opt.beta_shift, self.train_mode, self.opt.clip = kind, int(beta_shift), train, int(clip)

    def predict(self) -> int:
        return int(np.argmax(self.state.u[0]))
