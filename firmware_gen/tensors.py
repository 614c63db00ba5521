"""Python twins of the device's tensor table and digest, and the reference device.

``state_tensors(qm, state, opt)`` lists, in the order of the C tensor table, every array
the device holds (weights, neuron state, target set, readout, optimizer state) as the
integer reference has them; ``state_digest`` is the CRC-32 ``etp_state_digest()``
computes over the same bytes. :class:`RefDevice` is the integer reference driven
exactly like the C API (batch 1, one frame per call), so a host can replay what it
sends to a device and compare tensors or digests after every call.

If the integer reference grows a state array that the C twin does not know,
:func:`state_tensors` raises instead of silently leaving it out.
"""
from __future__ import annotations

import dataclasses
import zlib
from fractions import Fraction

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.contract import OPT_CFG_RANGES
from edgetp.fixed.network_q import (QState, check_update_every, infer_step_q, init_state_q, state_arrays,
                                    train_step_q)
from edgetp.fixed.primitives import prng_seed
from edgetp.fixed.qconfig import QModel
from edgetp.fixed.update_q import KINDS, QOpt, lr_code
from edgetp.tp.config import TARGETS, TRAIN_MODES

from firmware_gen.layout import (DTYPES, device_layout, device_trainable, n_targets, resumed_membranes,
                                  target_stream_table)
from firmware_gen.defaults import DEFAULT_LR, DeviceSettings

# The fields of the reference's state objects that the C twin mirrors. A new field in
# edgetp.fixed is a new state array: the generator must learn it before it can be exported.
QSTATE_FIELDS = {"v", "s", "tr", "vt", "st", "trt", "trt0", "u", "t", "tt"}
QOPT_FIELDS = {"kind", "lr_m", "lr_e", "beta_shift", "rng", "stats", "step", "clip"}
STEPS_MAX = 2 ** 32 - 1       # the device's step counters (steps, tsteps, opt_steps) are uint32


FROZEN_TRAIN = "a frozen-hidden device learns the readout only (train 'readout', train_all 0)"
# The reference's arrays a frozen-hidden device does not hold: the target set (never run: zero)
# and its propagators S, S_rec (unused).
_NO_TARGET_SET = ("vt", "st", "trt", "trt0", "S", "S_rec")


class DriftError(EdgetpError):
    """The integer reference has state the C twin does not mirror."""


def check_reference_fields() -> None:
    got = {f.name for f in dataclasses.fields(QState)}, {f.name for f in dataclasses.fields(QOpt)}
    for have, want, what in ((got[0], QSTATE_FIELDS, "QState"), (got[1], QOPT_FIELDS, "QOpt")):
        if have != want:
            raise DriftError(f"edgetp.fixed {what} has fields {sorted(have)}, the C twin mirrors {sorted(want)}: "
                             f"update firmware_gen (layout, runtime) for {sorted(have ^ want)}")


def opt_cfg(opt: QOpt, train: str = "all", frozen_hidden: bool = False) -> np.ndarray:
    """The ``opt_cfg`` tensor: kind (index in update_q.KINDS), lr_m, lr_e, beta_shift, train_all, clip.
    A frozen-hidden device holds train_all = 0 only (etp_set_optimizer refuses 1)."""
    if train not in TRAIN_MODES:
        raise EdgetpError(f"train must be one of {TRAIN_MODES}, got {train!r}")
    if frozen_hidden and train != "readout":
        raise EdgetpError(FROZEN_TRAIN)
    return np.array([KINDS.index(opt.kind), opt.lr_m, opt.lr_e, opt.beta_shift, int(train == "all"), opt.clip],
                    dtype=np.int32)


def state_tensors(qm: QModel, state: QState, opt: QOpt, targets: str = "classes",
                  train: str = "all") -> list[tuple[str, np.ndarray]]:
    """Every tensor of the device's table, in table order, as flat arrays of the C dtypes."""
    check_reference_fields()
    lay = device_layout(qm, targets)
    L = qm.cfg.layers
    src = {n: qm.weights[n] for n, _a in qm.named_arrays()}
    for l in range(L):
        src.update({f"v{l}": state.v[l], f"s{l}": state.s[l], f"tr{l}": state.tr[l],
                    f"vt{l}": state.vt[l], f"st{l}": state.st[l], f"trt{l}": state.trt[l]})
    src.update({"trl": state.trt0, "u": state.u, "steps": np.array([state.t]), "tsteps": np.array([state.tt]),
                "rng": opt.rng,
                "opt_steps": np.array([opt.step]), "opt_cfg": opt_cfg(opt, train, qm.frozen_hidden)})
    tab = None if qm.frozen_hidden else target_stream_table(qm, targets)
    if tab is not None and len(tab.resumed):
        src["vt0_resume"] = resumed_membranes(tab, state.vt[0], state.tt)
    for n in device_trainable(qm):
        rows, cols = qm.weights[n].shape
        rr, cc = opt.stats.get(n, (np.zeros(rows, np.int64), np.zeros(cols, np.int64)))
        src[f"rr_{n}"], src[f"cc_{n}"] = rr, cc
    covered = {id(a) for a in src.values()}
    if qm.frozen_hidden:
        check_no_target_set(qm, state, opt)
    for name, a in state_arrays(qm, state, opt):     # the reference's own list of its arrays
        if qm.frozen_hidden and name.rstrip("0123456789") in _NO_TARGET_SET:
            continue
        if id(a) not in covered:
            raise DriftError(f"edgetp.fixed lists the array {name!r} ({a.dtype} {a.shape}), which the C twin does not "
                             "hold: update firmware_gen (layout, runtime)")
    out = []
    for it in lay.table():
        a = np.asarray(src[it.name])
        want = DTYPES[lay.dtype_of(it)][2]
        if a.size != it.count:
            raise DriftError(f"reference tensor {it.name} has {a.size} elements, the device {it.count}")
        if a.dtype != want and not (a.dtype.kind in "iu" and np.array_equal(a.astype(want), a)):
            raise DriftError(f"reference tensor {it.name} is {a.dtype}, the device stores {np.dtype(want).name}")
        out.append((it.name, np.ascontiguousarray(a.reshape(-1)).astype(want, copy=False)))
    return out


def check_no_target_set(qm: QModel, state: QState, opt: QOpt) -> None:
    """A frozen-hidden device holds no target set and trains the readout alone: the reference
    must not have run a target stream (its target state all zero, no target step counted) nor
    hold optimizer statistics of a hidden tensor."""
    tgt = [*state.vt, *state.st, *state.trt, state.trt0]
    if state.tt != 0 or any(np.any(np.asarray(a) != 0) for a in tgt):
        raise DriftError(f"the reference ran the target set ({state.tt} target steps) of a frozen-hidden model, "
                         "which the device does not hold")
    extra = sorted(set(opt.stats) - set(device_trainable(qm)))
    if extra:
        raise DriftError(f"the reference updated {extra} of a frozen-hidden model: the device trains the readout only")


def tensor_bytes(tensors) -> bytes:
    """Little-endian bytes of every element, tensors concatenated in order."""
    return b"".join(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes() for _n, a in tensors)


def state_digest(qm: QModel, state: QState, opt: QOpt, targets: str = "classes", train: str = "all") -> int:
    """``etp_state_digest()``'s twin: CRC-32 (zlib's, IEEE 802.3) over every table tensor."""
    return zlib.crc32(tensor_bytes(state_tensors(qm, state, opt, targets, train))) & 0xFFFFFFFF


@dataclasses.dataclass
class DeviceConfig:
    """What the device is exported with besides the model: target set, optimizer defaults and
    ``update_every`` (ETP_UPDATE_EVERY: etp_train_step learns on the steps t % k == 0 since the reset)."""

    targets: str = "classes"
    optimizer: str = DeviceSettings.optimizer   # the defaults the options and a hil recipe declare
    lr: float = DEFAULT_LR
    beta_shift: int = DeviceSettings.beta_shift
    train: str = "all"
    clip: int = DeviceSettings.clip   # normalised rules: |move| <= 2^clip * lr per weight; -1: no limit
    lr_min: float = DeviceSettings.lr_min   # etp_set_lr (SET_LR) accepts lr_min <= lr <= lr_max only (ETP_LR_MIN/MAX_*)
    lr_max: float | None = None   # None: the export's lr
    update_every: int = 1     # a compile-time constant of the export (the model's recipe["finetune"])
    frozen_hidden: bool = False   # hidden layers constant in flash, readout learns (train "readout" only)

    def __post_init__(self):
        if self.frozen_hidden and self.train != "readout":
            raise EdgetpError(f"--frozen-hidden needs --train readout (the hidden layers cannot learn), got "
                              f"train {self.train!r}")
        self.update_every = check_update_every(self.update_every)
        if self.update_every > STEPS_MAX:                 # the device counts steps in a uint32
            raise EdgetpError(f"update every must be at most {STEPS_MAX} on the device, got {self.update_every}")
        if self.lr_max is None:
            self.lr_max = self.lr
        lo, hi = lr_code(self.lr_min), lr_code(self.lr_max)
        if not lr_le(*lo, *self.lr_code) or not lr_le(*self.lr_code, *hi):
            raise EdgetpError(f"the learning rate {self.lr:g} must lie in [lr_min, lr_max] = "
                              f"[{self.lr_min:g}, {self.lr_max:g}]")
        n_targets_ok = self.targets in TARGETS
        if not n_targets_ok or self.optimizer not in KINDS or self.train not in TRAIN_MODES:
            raise EdgetpError(f"targets must be batch|classes, optimizer one of {KINDS}, train one of {TRAIN_MODES}")
        for name, v in (("beta_shift", self.beta_shift), ("clip", self.clip)):   # the C checks the same ranges
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
        return (OPT_CFG_RANGES["lr_m"][0] <= int(lr_m) <= OPT_CFG_RANGES["lr_m"][1]
                and OPT_CFG_RANGES["lr_e"][0] <= int(lr_e) <= OPT_CFG_RANGES["lr_e"][1]
                and lr_le(*lr_code(self.lr_min), lr_m, lr_e)
                and lr_le(lr_m, lr_e, *lr_code(self.lr_max)))


def default_device(qm: QModel) -> DeviceConfig:
    """The default settings for ``qm``: DeviceConfig(), readout-only for a frozen-hidden model."""
    return DeviceConfig(train="readout", frozen_hidden=True) if qm.frozen_hidden else DeviceConfig()


def check_frozen(qm: QModel, dev: DeviceConfig) -> None:
    """The device settings and the integer model agree on the frozen-hidden mode."""
    if bool(dev.frozen_hidden) != qm.frozen_hidden:
        have = "is" if qm.frozen_hidden else "is not"
        raise EdgetpError(f"the integer model {have} frozen-hidden but the device settings say frozen_hidden "
                          f"{dev.frozen_hidden}: quantize and export with the same --frozen-hidden")


def lr_le(m: int, e: int, m2: int, e2: int) -> bool:
    """m * 2^-e <= m2 * 2^-e2, exactly (learning-rate codes, m and m2 in 0..255)."""
    return Fraction(int(m)) / Fraction(2) ** int(e) <= Fraction(int(m2)) / Fraction(2) ** int(e2)


class RefDevice:
    """The integer reference behind the C API: ``init``, ``reset``, ``infer``, ``train``,
    ``predict``, ``digest``, ``tensors`` (batch 1, the device's target set)."""

    def __init__(self, qm: QModel, cfg: DeviceConfig | None = None):
        self.cfg = cfg or default_device(qm)
        check_frozen(qm, self.cfg)
        self.qm0 = qm.copy()
        self.K = n_targets(qm, self.cfg.targets)
        self.init(0)

    def init(self, seed: int) -> None:
        self.qm = self.qm0.copy()
        m, e = self.cfg.lr_code
        self.opt = QOpt(self.cfg.optimizer, m, e, int(self.cfg.beta_shift),
                        np.array([prng_seed(seed)], dtype=np.uint32), clip=int(self.cfg.clip))
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
        self.state = train_step_q(self.qm, self.state, self._x(x), np.array([int(label)], dtype=np.int64), self.opt,
                                  self.cfg.targets, self.train_mode, update_every=self.cfg.update_every)

    def set_lr(self, lr_m: int, lr_e: int) -> None:
        if not self.cfg.lr_in_range(lr_m, lr_e):        # etp_set_lr answers ETP_EBADARG
            raise EdgetpError(f"learning-rate code ({lr_m}, {lr_e}) = {int(lr_m) * 2.0 ** -int(lr_e):g} is outside "
                              f"the export's range [{self.cfg.lr_min:g}, {self.cfg.lr_max:g}]")
        self.opt.lr_m, self.opt.lr_e = int(lr_m), int(lr_e)

    def set_optimizer(self, kind: str, beta_shift: int, train: str, clip: int = -1) -> None:
        if self.cfg.frozen_hidden and train != "readout":      # etp_set_optimizer answers ETP_EBADARG
            raise EdgetpError(FROZEN_TRAIN)
        self.opt.kind, self.opt.beta_shift, self.train_mode, self.opt.clip = kind, int(beta_shift), train, int(clip)

    def predict(self) -> int:
        return int(np.argmax(self.state.u[0]))

    def tensors(self) -> list[tuple[str, np.ndarray]]:
        return state_tensors(self.qm, self.state, self.opt, self.cfg.targets, self.train_mode)

    def digest(self) -> int:
        return zlib.crc32(tensor_bytes(self.tensors())) & 0xFFFFFFFF
