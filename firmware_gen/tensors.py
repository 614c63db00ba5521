"""Python twins of the device's tensor table and digest.

``state_tensors(qm, state, opt)`` lists, in the order of the C tensor table, every array
the device holds (weights, neuron state, target set, readout, optimizer state) as the
integer reference has them; ``state_digest`` is the CRC-32 ``etp_state_digest()``
computes over the same bytes. :class:`TableDevice` is ``edgetp.fixed.device.RefDevice`` (the integer
reference driven exactly like the C API) with that table, so a host can replay what it
sends to a device and compare tensors or digests after every call.

If the integer reference grows a state array that the C twin does not know,
:func:`state_tensors` raises instead of silently leaving it out.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.device import FROZEN_TRAIN, RefDevice
from edgetp.fixed.network_q import QState, state_arrays
from edgetp.fixed.qconfig import QModel
from edgetp.fixed.contract import OPT_CODES
from edgetp.fixed.update_q import QOpt
from edgetp.tp.config import TRAIN_MODES

from firmware_gen.layout import DTYPES, device_layout, device_trainable, stored_form
from firmware_gen.tstream import resumed_membranes, target_stream_table

# The fields of the reference's state objects that the C twin mirrors. A new field in
# edgetp.fixed is a new state array: the generator must learn it before it can be exported.
QSTATE_FIELDS = {"v", "s", "tr", "vt", "st", "trt", "trl", "u", "t", "tt"}
QOPT_FIELDS = {"kind", "lr_m", "lr_e", "beta_shift", "rng", "stats", "step", "clip"}

# The reference's arrays a frozen-hidden device does not hold: the target set (never run: zero)
# and its propagators S, S_rec (unused).
_NO_TARGET_SET = ("vt", "st", "trt", "trl", "S", "S_rec")


class DriftError(EdgetpError):
    """The integer reference has state the C twin does not mirror."""


def check_reference_fields() -> None:
    got = {f.name for f in dataclasses.fields(QState)}, {f.name for f in dataclasses.fields(QOpt)}
    for have, want, what in ((got[0], QSTATE_FIELDS, "QState"), (got[1], QOPT_FIELDS, "QOpt")):
        if have != want:
            raise DriftError(
                f"edgetp.fixed {what} has fields {sorted(have)}, the C twin mirrors {sorted(want)}: "
                f"update firmware_gen (layout, runtime) for {sorted(have ^ want)}"
            )


def opt_cfg(opt: QOpt, train: str = "all", frozen_hidden: bool = False) -> np.ndarray:
    """The ``opt_cfg`` tensor: kind (its code, contract.OPT_CODES), lr_m, lr_e, beta_shift, train_all, clip.
    A frozen-hidden device holds train_all = 0 only (etp_set_optimizer refuses 1)."""
    if train not in TRAIN_MODES:
        raise EdgetpError(f"train must be one of {TRAIN_MODES}, got {train!r}")
    if frozen_hidden and train != "readout":
        raise EdgetpError(FROZEN_TRAIN)
    return np.array(
        [OPT_CODES[opt.kind], opt.lr_m, opt.lr_e, opt.beta_shift, int(train == "all"), opt.clip], dtype=np.int32
    )


def state_tensors(
    qm: QModel, state: QState, opt: QOpt, targets: str = "classes", train: str = "all"
) -> list[tuple[str, np.ndarray]]:
    """Every tensor of the device's table, in table order, as flat arrays of the C dtypes."""
    check_reference_fields()
    lay = device_layout(qm, targets)
    L = qm.cfg.layers
    src = {n: qm.weights[n] for n, _a in qm.named_arrays()}
    for l in range(L):
        src.update({f"{n}{l}": getattr(state, n)[l] for n in ("v", "s", "tr", "vt", "st", "trt")})
    src.update(
        {
            "trl": state.trl,
            "u": state.u,
            "steps": np.array([state.t]),
            "tsteps": np.array([state.tt]),
            "rng": opt.rng,
            "opt_steps": np.array([opt.step]),
            "opt_cfg": opt_cfg(opt, train, qm.frozen_hidden),
        }
    )
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
    for name, a in state_arrays(qm, state, opt):  # the reference's own list of its arrays
        if qm.frozen_hidden and name.rstrip("0123456789") in _NO_TARGET_SET:
            continue
        if id(a) not in covered:
            raise DriftError(
                f"edgetp.fixed lists the array {name!r} ({a.dtype} {a.shape}), which the C twin does not "
                "hold: update firmware_gen (layout, runtime)"
            )
    out = []
    for it in lay.table():
        a = stored_form(it, np.asarray(src[it.name]))
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
    tgt = [*state.vt, *state.st, *state.trt, state.trl]
    if state.tt != 0 or any(np.any(np.asarray(a) != 0) for a in tgt):
        raise DriftError(
            f"the reference ran the target set ({state.tt} target steps) of a frozen-hidden model, "
            "which the device does not hold"
        )
    extra = sorted(set(opt.stats) - set(device_trainable(qm)))
    if extra:
        raise DriftError(f"the reference updated {extra} of a frozen-hidden model: the device trains the readout only")


def tensor_bytes(tensors) -> bytes:
    """Little-endian bytes of every element, tensors concatenated in order."""
    return b"".join(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes() for _n, a in tensors)


def state_digest(qm: QModel, state: QState, opt: QOpt, targets: str = "classes", train: str = "all") -> int:
    """``etp_state_digest()``'s twin: CRC-32 (zlib's, IEEE 802.3) over every table tensor."""
    return zlib.crc32(tensor_bytes(state_tensors(qm, state, opt, targets, train))) & 0xFFFFFFFF


class TableDevice(RefDevice):
    """:class:`~edgetp.fixed.device.RefDevice` with the device's tensor table: ``tensors()`` lists its state as
    the C table does, ``digest()`` is ``etp_state_digest()``'s twin."""

    def tensors(self) -> list[tuple[str, np.ndarray]]:
        return state_tensors(self.qm, self.state, self.opt, self.cfg.targets, self.train_mode)

    def digest(self) -> int:
        return zlib.crc32(tensor_bytes(self.tensors())) & 0xFFFFFFFF
