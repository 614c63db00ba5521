"""The TP step in plain NumPy, written straight from the spec's equations.

No numba, no fusion, no caching: the baseline that `edgetp bench train` measures the
numba reference against, and an independent cross-check of it in the tests.
"""

from __future__ import annotations

import numpy as np

from edgetp.tp.config import DEFAULT_LR, NetConfig, Params


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _lif(v, cur, cfg):
    vpre = cfg.leak_m * v + cur
    s = (vpre >= cfg.vth).astype(v.dtype)
    vnew = vpre * (1 - s) if cfg.reset == "hard" else vpre - cfg.vth * s
    return vpre, s, vnew


def _sg(vpre, cfg):
    return cfg.gamma / (1 + (np.pi * (vpre - cfg.vth)) ** 2)


def train_sequence_numpy(
    params: Params,
    xs: np.ndarray,
    labels: np.ndarray,
    cfg: NetConfig,
    kind: str = "adam",
    lr: float = DEFAULT_LR,
    targets: str = "batch",
    adam_state=None,
):
    """Train on (B, T, N0) from a zero state; returns (final readout, adam_state)."""
    B, T, _ = xs.shape
    L, dt = cfg.layers, xs.dtype
    onehot = np.eye(cfg.n_out, dtype=dt)
    tin = onehot[labels] if targets == "batch" else onehot
    Bt = tin.shape[0]
    z = lambda n, h: np.zeros((n, h), dt)
    v, s, tr = [z(B, h) for h in cfg.hidden], [z(B, h) for h in cfg.hidden], [z(B, h) for h in cfg.hidden]
    vt, st, trt = [z(Bt, h) for h in cfg.hidden], [z(Bt, h) for h in cfg.hidden], [z(Bt, h) for h in cfg.hidden]
    trl, u = z(Bt, cfg.n_out), z(B, cfg.n_out)
    weights = params.trainable()
    m, vv, step = adam_state or ([np.zeros_like(w) for w in weights], [np.zeros_like(w) for w in weights], 0)
    for t in range(T):
        inp, inp_t = xs[:, t], tin
        ins, ins_t, vps, vps_t, sp, stp = [], [], [], [], list(s), list(st)
        for l in range(L):
            cur = inp @ params.W[l].T + (s[l] @ params.R[l].T if cfg.recurrent else 0)
            vpre, s[l], v[l] = _lif(v[l], cur, cfg)
            tr[l] = cfg.leak_t * tr[l] + s[l]
            Wt, Rt = (params.S, params.S_rec) if l == 0 else (params.W[l], params.R[l] if cfg.recurrent else None)
            cur_t = inp_t @ Wt.T + (st[l] @ Rt.T if cfg.recurrent else 0)
            vpre_t, st[l], vt[l] = _lif(vt[l], cur_t, cfg)
            trt[l] = cfg.leak_t * trt[l] + st[l]
            ins.append(inp)
            ins_t.append(inp_t)
            vps.append(vpre)
            vps_t.append(vpre_t)
            inp, inp_t = s[l], st[l]
        u = cfg.leak_out * u + s[-1] @ params.W[-1].T
        trl = cfg.leak_t * trl + tin
        grads = {}
        for l in range(L):
            p = trl if l == 0 else trt[l - 1]
            pr = p if targets == "batch" else p[labels]
            D = np.sqrt(((pr[:, None, :] - p[None, :, :] + 1e-9) ** 2).sum(-1))
            Y = _softmax(-D)
            dZ = (_softmax(tr[l] @ trt[l].T) - Y) / B
            delta = (dZ @ trt[l]) * _sg(vps[l], cfg)
            gW, gR = delta.T @ ins[l], (delta.T @ sp[l] if cfg.recurrent else None)
            if l >= 1:
                delta_t = (dZ.T @ tr[l]) * _sg(vps_t[l], cfg)
                gW = gW + delta_t.T @ ins_t[l]
                if cfg.recurrent:
                    gR = gR + delta_t.T @ stp[l]
            grads[f"W{l}"], grads[f"R{l}"] = gW, gR
        e = _softmax(u) - onehot[labels]
        grads[f"W{L}"] = e.T @ tr[-1] / B
        names = [f"W{i}" for i in range(L + 1)] + ([f"R{i}" for i in range(L)] if cfg.recurrent else [])
        step += 1
        for i, (w, n) in enumerate(zip(weights, names)):
            g = grads[n]
            if kind == "sgd":
                w -= lr * g
            else:
                m[i] = 0.9 * m[i] + 0.1 * g
                vv[i] = 0.999 * vv[i] + 0.001 * g * g
                w -= (lr / (1 - 0.9**step)) * m[i] / (np.sqrt(vv[i]) / np.sqrt(1 - 0.999**step) + 1e-8)
    return u, (m, vv, step)
