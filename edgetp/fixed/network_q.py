"""Integer TP: pure step functions over explicit integer state (the MCU's reference).

``train_step_q(qm, state, x, labels, opt, targets)`` runs one time step of the integer
rule: forward pass of the data and target streams, every layer's local gradient, one
optimizer step (the trainable weights of ``qm`` and the optimizer state ``opt`` change
in place; the returned neuron state is new). With ``update_every`` k > 1 the gradients
and the optimizer step are taken only on the steps t with t % k == 0 (t: steps since the
reset, ``state.t``); the other steps run the same forward pass of both streams. With
``train="readout"`` the target streams are not run at all (the readout's gradient reads
only the data stream's readout and last traces): the target-set state stays as it was.
Inputs ``x`` are int16 (or int8) features in Q.fx. Nothing on this path reads a float.
Formats and rounding: docs/fixed-point.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp.config import TARGETS, check_update_every
from edgetp.fixed.kernels_q import (
    contrastive_grads_q,
    delta_q,
    lif_step_q,
    outer_acc_q,
    readout_error_q,
    readout_step_q,
    soft_targets_q,
    surrogate_q,
    trace_step_q,
)
from edgetp.fixed.qconfig import DELTA_F, Q15, SURR_F, QModel
from edgetp.fixed.update_q import QOpt, update_q
from edgetp.tp.network import TPState

_EMPTY8 = np.zeros((0, 0), dtype=np.int8)


@dataclass
class QState(TPState):
    """The float state's fields (:class:`edgetp.tp.network.TPState`), all integer: v int32 Q.FV,
    s int8, tr int16 Q.ft per hidden layer (B, H_l); vt/st/trt the same for the target stream
    (K, H_l); trl int16 Q.ft (K, O); u int32 (B, O); t steps since the reset (zero state);
    tt the training steps (steps of the target stream) since the reset."""

    tt: int = 0

    def named_arrays(self) -> list[tuple[str, np.ndarray]]:
        """Every state array in a fixed order (the C state struct's order)."""
        out = []
        for stream, arrs in (("", (self.v, self.s, self.tr)), ("t", (self.vt, self.st, self.trt))):
            for l in range(len(self.v)):
                out += [(f"v{stream}{l}", arrs[0][l]), (f"s{stream}{l}", arrs[1][l]), (f"tr{stream}{l}", arrs[2][l])]
        return out + [("trl", self.trl), ("u", self.u)]


def state_arrays(qm: QModel, state: QState, opt: QOpt) -> list[tuple[str, np.ndarray]]:
    """Every array of a training run in one fixed order: weights, neuron state, optimizer."""
    return qm.named_arrays() + state.named_arrays() + opt.named_arrays()


def init_state_q(qm: QModel, batch: int, n_targets: int) -> QState:
    z = lambda n, h, dt: np.zeros((n, h), dtype=dt)
    hid = qm.cfg.hidden
    return QState(
        [z(batch, h, np.int32) for h in hid],
        [z(batch, h, np.int8) for h in hid],
        [z(batch, h, np.int16) for h in hid],
        [z(n_targets, h, np.int32) for h in hid],
        [z(n_targets, h, np.int8) for h in hid],
        [z(n_targets, h, np.int16) for h in hid],
        z(n_targets, qm.cfg.n_out, np.int16),
        z(batch, qm.cfg.n_out, np.int32),
    )


def target_inputs_q(qm: QModel, labels: np.ndarray, targets: str) -> np.ndarray:
    """One-hot int8 targets: each label (batch rule) or every class once (class rule)."""
    eye = np.eye(qm.cfg.n_out, dtype=np.int8)
    if targets == "batch":
        return eye[labels]
    if targets == "classes":
        return eye
    raise EdgetpError(f"targets must be one of {TARGETS}, got {targets!r}")


def _layer(qm, l, v, s_prev, x, target):
    w = qm.weights
    W = w["S"] if target and l == 0 else w[f"W{l}"]
    rec = qm.cfg.recurrent
    R = (w["S_rec"] if target and l == 0 else w[f"R{l}"]) if rec else _EMPTY8
    return lif_step_q(
        v,
        x,
        W,
        qm.in_shifts(l, target),
        s_prev,
        R,
        qm.rec_shift(l, target) if rec else 0,
        rec,
        qm.alpha_q,
        qm.vth_q,
        qm.hard,
    )


def forward_q(qm: QModel, state: QState, x: np.ndarray, tin: np.ndarray | None) -> tuple[QState, dict]:
    """One forward step of both streams (``tin`` None: data stream only). Returns the new
    state and what learning needs (``vpre``/``vpre_t`` and each layer's inputs)."""
    L = qm.cfg.layers
    v, s, tr, vt, st, trt = [], [], [], [], [], []
    aux = {"vpre": [], "vpre_t": [], "in": [], "in_t": []}
    inp, inp_t = x, tin
    for l in range(L):
        vn, sn, vp = _layer(qm, l, state.v[l], state.s[l], inp, False)
        v.append(vn), s.append(sn), tr.append(trace_step_q(state.tr[l], sn, qm.lam_q, qm.ft))
        aux["in"].append(inp), aux["vpre"].append(vp)
        inp = sn
        if tin is not None:
            vn, sn, vp = _layer(qm, l, state.vt[l], state.st[l], inp_t, True)
            vt.append(vn), st.append(sn), trt.append(trace_step_q(state.trt[l], sn, qm.lam_q, qm.ft))
            aux["in_t"].append(inp_t), aux["vpre_t"].append(vp)
            inp_t = sn
    if tin is None:
        vt, st, trt, trl = state.vt, state.st, state.trt, state.trl
    else:
        trl = trace_step_q(state.trl, tin, qm.lam_q, qm.ft)
    u = readout_step_q(state.u, s[-1], qm.weights[f"W{L}"], qm.beta_q)
    return QState(v, s, tr, vt, st, trt, trl, u, state.t + 1, state.tt + (tin is not None)), aux


def grad_formats(qm: QModel) -> dict:
    """Fractional bits of each raw int64 gradient (``G`` in docs/fixed-point.md)."""
    L = qm.cfg.layers
    out = {f"W{l}": DELTA_F + (qm.fx if l == 0 else 0) for l in range(L)}
    out[f"W{L}"] = Q15 + qm.ft
    out.update({f"R{l}": DELTA_F for l in range(L)} if qm.cfg.recurrent else {})
    return out


def _terms(ds: list, xs: list) -> tuple:
    """A gradient sum_t d_t x_t^T as its factors (D, X), int64 (update_q.as_terms)."""
    return (
        np.ascontiguousarray(np.concatenate([np.asarray(d, np.int64) for d in ds])),
        np.ascontiguousarray(np.concatenate([np.asarray(x, np.int64) for x in xs])),
    )


def dense_grad(terms: tuple, shape: tuple) -> np.ndarray:
    """The int64 gradient sum_t D[t] X[t]^T of a tensor given by its factors, each element
    accumulated with outer_acc_q's saturation to +-2^58 (for checks; the update reads the factors)."""
    D, X = terms
    g = np.zeros(shape, dtype=np.int64)
    outer_acc_q(g, D, X)
    return g


def gradients_q(
    qm: QModel, prev: QState, new: QState, aux: dict, labels: np.ndarray, targets: str, train: str = "all"
) -> dict:
    """Every layer's gradient at this step (spec 3, 5), in the formats of grad_formats, as its
    factors (D, X): g = sum_t D[t] X[t]^T, one term per data row and (from layer 1 on) per target row."""
    L, B, rec = qm.cfg.layers, new.u.shape[0], qm.cfg.recurrent
    sh = Q15 + qm.ft + SURR_F - DELTA_F
    grads = {}
    if train == "all":
        for l in range(L):
            p = new.trl if l == 0 else new.trt[l - 1]
            y = soft_targets_q(p if targets == "batch" else p[labels], p, qm.ft)
            dh, dg = contrastive_grads_q(new.tr[l], new.trt[l], y, qm.ft, B)
            d = delta_q(dh, surrogate_q(aux["vpre"][l], qm.vth_q, qm.gamma_q), sh)
            dW, xW, dR, xR = [d], [aux["in"][l]], [d], [prev.s[l]]
            if l >= 1:
                dt = delta_q(dg, surrogate_q(aux["vpre_t"][l], qm.vth_q, qm.gamma_q), sh)
                dW.append(dt), xW.append(aux["in_t"][l]), dR.append(dt), xR.append(prev.st[l])
            grads[f"W{l}"] = _terms(dW, xW)
            if rec:
                grads[f"R{l}"] = _terms(dR, xR)
    e = readout_error_q(new.u, labels, qm.fw[f"W{L}"], B)
    grads[f"W{L}"] = _terms([e], [new.tr[-1]])
    return grads


def train_step_q(
    qm: QModel,
    state: QState,
    x: np.ndarray,
    labels: np.ndarray,
    opt: QOpt,
    targets: str = "classes",
    train: str = "all",
    tin: np.ndarray | None = None,
    update_every: int = 1,
) -> QState:
    """One time step of integer TP learning; ``qm``'s trainable weights and ``opt`` change in place.

    Update every k (``update_every``, C: ETP_UPDATE_EVERY): the step learns - local gradients
    and one optimizer step - only when t % k == 0, t = ``state.t`` the steps (training or
    inference) since the reset, before this one; on the other steps only the forward pass of
    both streams runs, the same as on a learning step, so the neuron state does not depend
    on k. k = 1 learns at every step. Readout only (``train="readout"``): the forward pass is
    the data stream's alone (infer_step_q's), the target set is neither run nor changed (its
    steps ``tt`` do not advance). A frozen-hidden model (``qm.frozen_hidden``) learns the
    readout only. C twin: etp_train_step (etp_network.c)."""
    if train == "readout":
        tin = None
    elif qm.frozen_hidden:
        raise EdgetpError(f"a frozen-hidden integer model learns the readout only (train 'readout'), got {train!r}")
    elif tin is None:
        tin = target_inputs_q(qm, labels, targets)
    learn = state.t % update_every == 0
    new, aux = forward_q(qm, state, x, tin)
    if learn:
        grads = gradients_q(qm, state, new, aux, labels, targets, train)
        update_q(qm, opt, grads, grad_formats(qm))
    return new


def infer_step_q(qm: QModel, state: QState, x: np.ndarray) -> QState:
    """Data stream only (spec 4)."""
    return forward_q(qm, state, x, None)[0]


def train_sequence_q(
    qm: QModel,
    xs: np.ndarray,
    labels: np.ndarray,
    opt: QOpt,
    targets: str = "classes",
    train: str = "all",
    update_every: int = 1,
) -> QState:
    """Train on integer sequences ``xs`` (B, T, N0) from a zero state, one update per step
    (``update_every`` k: one update on each step t = 0, k, 2k, ... of the sequence)."""
    update_every = check_update_every(update_every)
    xs = check_inputs(qm, xs)
    labels = np.asarray(labels, dtype=np.int64)
    tin = target_inputs_q(qm, labels, targets)
    if max(tin.shape[0], xs.shape[0]) * qm.gamma_q >= 1 << 33:  # keeps dh * sigma' < 2^63
        raise EdgetpError(f"{tin.shape[0]} target rows with surrogate scale {qm.cfg.gamma} overflow the integer rule")
    state = init_state_q(qm, xs.shape[0], tin.shape[0])
    for t in range(xs.shape[1]):
        state = train_step_q(qm, state, np.ascontiguousarray(xs[:, t]), labels, opt, targets, train, tin, update_every)
    return state


def check_inputs(qm: QModel, xs) -> np.ndarray:
    xs = np.asarray(xs)
    if xs.dtype != qm.xdtype or xs.ndim != 3 or xs.shape[2] != qm.cfg.n_in:
        raise EdgetpError(
            f"integer TP takes {np.dtype(qm.xdtype).name} inputs (N, T, {qm.cfg.n_in}), got {xs.dtype} {xs.shape}"
        )
    return xs


def infer_sequence_q(qm: QModel, xs: np.ndarray) -> np.ndarray:
    """Readout u (int32, (B, O)) after the last step, from a zero state."""
    xs = check_inputs(qm, xs)
    state = init_state_q(qm, xs.shape[0], 0)
    for t in range(xs.shape[1]):
        state = infer_step_q(qm, state, np.ascontiguousarray(xs[:, t]))
    return state.u


def predict_q(qm: QModel, xs: np.ndarray, batch: int = 256) -> np.ndarray:
    """argmax of the integer readout at the last step (first maximum on ties)."""
    out = [infer_sequence_q(qm, xs[i : i + batch]).argmax(1) for i in range(0, len(xs), batch)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
