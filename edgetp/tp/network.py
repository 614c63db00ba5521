"""Float TP: pure step functions over explicit state (spec sections 2-5).

``train_step(params, state, x, labels, cfg, opt)`` runs one time step: the forward
pass of the data and target streams, every layer's local gradient, then one
optimizer step (weights change in place; the returned state is new). With
``update_every`` k > 1 a step learns only when t % k == 0 (t = ``state.t``, steps since
the reset); the others run the same forward pass (the integer rule's semantics,
edgetp.fixed.network_q.train_step_q).

Target sets (spec 5): ``"batch"`` runs the target stream on each sample's label (the
paper; needs B >= 2 to learn in hidden layers); ``"classes"`` runs it on every class
once and contrasts each sample against all class prototypes (works at B = 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp import kernels as K
from edgetp.tp.config import (
    DEFAULT_BETA_SHIFT,
    DEFAULT_LR,
    TARGETS,
    NetConfig,
    Params,
    check_update_every,
    trainable_names,
)
from edgetp.tp.propagator import PropagatorCache, get_cache

# BLAS threads: a multi-threaded BLAS beside numba's threads slows training down; the
# commands limit it where they start (edgetp.threads), importing this module changes nothing.


@dataclass
class TPState:
    """Neuron state of one sample batch; all zero at the start of a sample.

    v/s/tr: data-stream membrane, last spikes and traces per hidden layer (B, H_l);
    vt/st/trt: the same for the target stream (Bt, H_l); trl: label trace (Bt, O);
    u: readout (B, O); t: steps taken since the reset.
    """

    v: list
    s: list
    tr: list
    vt: list
    st: list
    trt: list
    trl: np.ndarray
    u: np.ndarray
    t: int = 0


def init_state(cfg: NetConfig, batch: int, n_targets: int, dtype=np.float64) -> TPState:
    z = lambda n, h: np.zeros((n, h), dtype=dtype)
    return TPState(
        v=[z(batch, h) for h in cfg.hidden],
        s=[z(batch, h) for h in cfg.hidden],
        tr=[z(batch, h) for h in cfg.hidden],
        vt=[z(n_targets, h) for h in cfg.hidden],
        st=[z(n_targets, h) for h in cfg.hidden],
        trt=[z(n_targets, h) for h in cfg.hidden],
        trl=z(n_targets, cfg.n_out),
        u=z(batch, cfg.n_out),
    )


@dataclass
class Grad:
    """A weight gradient as a sum of outer products: ``scale * sum_k d_k^T p_k`` (rank-B terms).

    Kept as outer products because at small batch the fused kernel never forms the matrix
    (not to be confused with the removed ``factored`` optimizer of the integer rule).
    """

    terms: list
    scale: float = 1.0

    def dense(self) -> np.ndarray:
        g = sum(d.T @ p for d, p in self.terms)
        return g * g.dtype.type(self.scale) if self.scale != 1.0 else g


# Below this batch size the fused outer-product kernel beats BLAS + an elementwise pass.
FUSED_MAX_BATCH = 8


ROWNORM_DECAY = 2.0**-DEFAULT_BETA_SHIFT  # rownorm's EMA decay: the integer rule's default beta_shift

OPTIMIZERS = ("adam", "sgd", "rownorm", "colnorm")


@dataclass
class Optimizer:
    """SGD, Adam (PyTorch semantics), rownorm or colnorm. ``lr`` may change between steps.

    ``rownorm`` / ``colnorm`` are the float twins of the integer rule's normalised updates
    (edgetp.fixed.update_q): Delta W_ij = lr g_ij / sqrt(rr_i) (per neuron) or
    lr g_ij / sqrt(cc_j) (per input), rr_i / cc_j an EMA (decay 2^-10, set from the first
    nonzero gradient) of row i's / column j's mean square gradient; rows or columns whose
    EMA is 0 stay. No momentum (docs/fixed-point.md, section 6.3).
    """

    kind: str = "adam"
    lr: float = DEFAULT_LR
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    step: int = 0
    m: list = field(default_factory=list)
    v: list = field(default_factory=list)

    def __post_init__(self):
        if self.kind not in OPTIMIZERS:
            raise EdgetpError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.kind!r}")
        if not self.lr >= 0:
            raise EdgetpError(f"learning rate must be >= 0, got {self.lr}")

    def apply(self, weights: list, grads: list, record: list | None = None) -> None:
        """One step over ``weights`` with outer-product ``grads`` (None = frozen this step).

        ``record``, if given, receives each dense gradient (None where not computed).
        """
        if self.kind in ("rownorm", "colnorm"):
            return self._normed(weights, grads, record, 1 if self.kind == "rownorm" else 0)
        adam = self.kind == "adam"
        if adam and not self.m:
            # Moments in float64 whatever the weights: float32 moments of tiny gradients go
            # subnormal, and x86 then runs the update ~10x slower (measured at batch 1).
            self.m = [np.zeros(w.shape, np.float64) for w in weights]
            self.v = [np.zeros(w.shape, np.float64) for w in weights]
        self.step += 1
        for i, (w, g) in enumerate(zip(weights, grads)):
            if g is None:
                if record is not None:
                    record.append(None)
                continue
            m, v = (self.m[i], self.v[i]) if adam else (_EMPTY2[np.dtype(np.float64)], _EMPTY2[np.dtype(np.float64)])
            if max(d.shape[0] for d, _ in g.terms) <= FUSED_MAX_BATCH:
                d1, p1 = g.terms[0]
                d2, p2 = g.terms[1] if len(g.terms) > 1 else (_EMPTY2[w.dtype], _EMPTY2[w.dtype])
                gout = np.empty_like(w) if record is not None else _EMPTY2[w.dtype]
                K.outer_update(
                    w,
                    d1,
                    p1,
                    d2,
                    p2,
                    w.dtype.type(g.scale),
                    adam,
                    m,
                    v,
                    self.lr,
                    self.beta1,
                    self.beta2,
                    self.eps,
                    self.step,
                    gout,
                )
            else:
                gout = g.dense()
                if adam:
                    K.adam_update(
                        w.reshape(-1),
                        gout.reshape(-1),
                        m.reshape(-1),
                        v.reshape(-1),
                        self.lr,
                        self.beta1,
                        self.beta2,
                        self.eps,
                        self.step,
                    )
                else:
                    K.sgd_update(w.reshape(-1), gout.reshape(-1), w.dtype.type(self.lr))
            if record is not None:
                record.append(gout)

    def _normed(self, weights: list, grads: list, record: list | None, axis: int) -> None:
        if not self.v:
            self.v = [None] * len(weights)
        self.step += 1
        for i, (w, g) in enumerate(zip(weights, grads)):
            gout = None if g is None else g.dense()
            if record is not None:
                record.append(gout)
            if gout is None:
                continue
            ms = np.mean(np.square(gout, dtype=np.float64), axis=axis)
            if self.v[i] is None:
                if not ms.any():
                    continue
                self.v[i] = ms
            else:
                self.v[i] += (ms - self.v[i]) * ROWNORM_DECAY
            v = self.v[i]
            scale = np.divide(self.lr, np.sqrt(v), out=np.zeros_like(v), where=v > 0)
            w -= (gout * (scale[:, None] if axis == 1 else scale[None, :])).astype(w.dtype)


_EMPTY2 = {np.dtype(t): np.zeros((0, 0), dtype=t) for t in (np.float32, np.float64)}


def _layer_forward(cfg, W_in, R, v, s_prev, x, dtype):
    """Input current and LIF step for one stream of one hidden layer."""
    cur = x @ W_in.T
    if R is not None:
        cur += s_prev @ R.T
    return K.lif_step(v, cur, dtype(cfg.leak_m), dtype(cfg.vth), cfg.reset == "hard")


def forward(
    params: Params,
    state: TPState,
    x: np.ndarray,
    target_in: np.ndarray | None,
    cfg: NetConfig,
    prop: PropagatorCache | None = None,
    rows: np.ndarray | None = None,
) -> tuple[TPState, dict]:
    """Forward pass of one step (spec 2). ``target_in`` is the one-hot target of each
    target-stream row (None = inference: data stream only). Returns the new state and
    the per-layer quantities learning needs (``vpre``, ``vpre_t``, inputs).

    With ``prop``, layer 1's target stream is read from the per-class cache (rows
    ``rows`` of it, or all classes when None) instead of being recomputed."""
    dt = np.dtype(x.dtype).type
    lam = dt(cfg.leak_t)
    v, s, tr = [a.copy() for a in state.v], list(state.s), list(state.tr)
    vt, st, trt = [a.copy() for a in state.vt], list(state.st), list(state.trt)
    aux = {"vpre": [], "vpre_t": [], "in": [], "in_t": [], "s_prev": list(state.s), "st_prev": list(state.st)}
    inp = x
    inp_t = target_in
    for l in range(cfg.layers):
        R = params.R[l] if cfg.recurrent else None
        aux["in"].append(inp)
        vpre, s[l] = _layer_forward(cfg, params.W[l], R, v[l], state.s[l], inp, dt)
        tr[l] = lam * state.tr[l] + s[l]
        aux["vpre"].append(vpre)
        inp = s[l]
        if target_in is not None:
            if l == 0:
                Win_t, R_t = params.S, (params.S_rec if cfg.recurrent else None)
            else:
                Win_t, R_t = params.W[l], R
            aux["in_t"].append(inp_t)
            if l == 0 and prop is not None:
                vpre_t, st[0], vt[0], trt[0] = prop.at(state.t, rows)
            else:
                vpre_t, st[l] = _layer_forward(cfg, Win_t, R_t, vt[l], state.st[l], inp_t, dt)
                trt[l] = lam * state.trt[l] + st[l]
            aux["vpre_t"].append(vpre_t)
            inp_t = st[l]
    u = dt(cfg.leak_out) * state.u + s[-1] @ params.W[-1].T
    trl = lam * state.trl + target_in if target_in is not None else state.trl
    return TPState(v, s, tr, vt, st, trt, trl, u, state.t + 1), aux


def gradients(
    params: Params, new: TPState, aux: dict, labels: np.ndarray, cfg: NetConfig, targets: str, train: str = "all"
) -> dict[str, Grad]:
    """Every layer's local gradient at this step (spec 3, 5), as outer products; keys ``W0..WL``, ``R0..``.

    ``train="readout"`` computes only the readout's gradient.
    """
    dt = np.dtype(new.u.dtype).type
    B = new.u.shape[0]
    grads = {}
    if train == "all":
        for l in range(cfg.layers):
            p = new.trl if l == 0 else new.trt[l - 1]
            p_rows = p if targets == "batch" else p[labels]
            y = K.soft_targets(p_rows, p)
            dh, dg, _ = K.contrastive_grads(new.tr[l], new.trt[l], y)
            delta = dh * K.surrogate(aux["vpre"][l], dt(cfg.vth), dt(cfg.gamma))
            gW, gR = [(delta, aux["in"][l])], [(delta, aux["s_prev"][l])]
            if l >= 1:  # layer 1's target stream comes from the frozen propagator
                delta_t = dg * K.surrogate(aux["vpre_t"][l], dt(cfg.vth), dt(cfg.gamma))
                gW.append((delta_t, aux["in_t"][l]))
                gR.append((delta_t, aux["st_prev"][l]))
            grads[f"W{l}"] = Grad(gW)
            if cfg.recurrent:
                grads[f"R{l}"] = Grad(gR)
    e = K.softmax_rows(new.u)
    e[np.arange(B), labels] -= 1.0
    grads[f"W{cfg.layers}"] = Grad([(e, new.tr[-1])], 1.0 / B)
    return grads


def target_inputs(cfg: NetConfig, labels: np.ndarray, targets: str, dtype) -> np.ndarray:
    if targets == "batch":
        return np.eye(cfg.n_out, dtype=dtype)[labels]
    if targets == "classes":
        return np.eye(cfg.n_out, dtype=dtype)
    raise EdgetpError(f"targets must be one of {TARGETS}, got {targets!r}")


def train_step(
    params: Params,
    state: TPState,
    x: np.ndarray,
    labels: np.ndarray,
    cfg: NetConfig,
    opt: Optimizer,
    targets: str = "batch",
    train: str = "all",
    target_in: np.ndarray | None = None,
    record: bool = False,
    prop: PropagatorCache | None = None,
    update_every: int = 1,
) -> tuple[TPState, dict]:
    """One time step of TP learning: forward, local gradients, one optimizer step.

    Returns ``(new_state, grads)``; ``params`` are updated in place. ``grads`` holds the
    dense gradient of every trained matrix when ``record`` is set, else it is empty.
    ``prop`` (see :mod:`edgetp.tp.propagator`) supplies layer 1's target stream.
    ``update_every`` k: gradients and the optimizer step only when ``state.t % k == 0``
    (steps since the reset, before this one); other steps run the forward pass alone
    and return no gradients (edgetp.fixed.network_q.train_step_q's semantics).
    """
    if target_in is None:
        target_in = target_inputs(cfg, labels, targets, x.dtype)
    rows = labels if targets == "batch" else None
    new, aux = forward(params, state, x, target_in, cfg, prop, rows)
    if state.t % update_every != 0:
        return new, {}
    outer = gradients(params, new, aux, labels, cfg, targets, train)
    names = trainable_names(cfg)
    dense = [] if record else None
    opt.apply(params.trainable(), [outer.get(n) for n in names], dense)
    return new, ({n: g for n, g in zip(names, dense) if g is not None} if record else {})


def infer_step(params: Params, state: TPState, x: np.ndarray, cfg: NetConfig) -> TPState:
    """Data stream only (spec 4)."""
    return forward(params, state, x, None, cfg)[0]


def train_sequence(
    params: Params,
    xs: np.ndarray,
    labels: np.ndarray,
    cfg: NetConfig,
    opt: Optimizer,
    targets: str = "batch",
    train: str = "all",
    prop: PropagatorCache | None = None,
    update_every: int = 1,
) -> TPState:
    """Train on a batch of sequences ``xs`` (B, T, N0) from a zero state, one update per step
    (``update_every`` k: one update on each step t = 0, k, 2k, ... of the sequence).

    Pass the same ``prop`` (or one from :func:`edgetp.tp.propagator.get_cache`) across
    calls to compute the frozen propagator's trajectory only once.
    """
    update_every = check_update_every(update_every)
    xs = np.asarray(xs)
    labels = np.asarray(labels, dtype=np.int64)
    B = xs.shape[0]
    n_t = B if targets == "batch" else cfg.n_out
    state = init_state(cfg, B, n_t, xs.dtype)
    tin = target_inputs(cfg, labels, targets, xs.dtype)
    prop = get_cache(prop, params, cfg, xs.dtype)
    for t in range(xs.shape[1]):
        state, _ = train_step(
            params,
            state,
            np.ascontiguousarray(xs[:, t]),
            labels,
            cfg,
            opt,
            targets,
            train,
            tin,
            prop=prop,
            update_every=update_every,
        )
    return state


def infer_sequence(params: Params, xs: np.ndarray, cfg: NetConfig) -> np.ndarray:
    """Readout after the last step, (B, O), from a zero state."""
    xs = np.asarray(xs)
    state = init_state(cfg, xs.shape[0], 0, xs.dtype)
    for t in range(xs.shape[1]):
        state = infer_step(params, state, np.ascontiguousarray(xs[:, t]), cfg)
    return state.u


def predict(params: Params, xs: np.ndarray, cfg: NetConfig, batch: int = 256) -> np.ndarray:
    """argmax of the readout at the last step (spec 4)."""
    out = [infer_sequence(params, xs[i : i + batch], cfg).argmax(1) for i in range(0, len(xs), batch)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
