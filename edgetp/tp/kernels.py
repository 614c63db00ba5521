"""Numba kernels of the float TP reference: one equation each, explicit state.

Every kernel also runs as plain Python under ``NUMBA_DISABLE_JIT=1``. ``error_model="numpy"``
drops Python's division-by-zero checks, which otherwise keep LLVM from vectorising the
update loops (measured 2x on the Adam update); IEEE results are unchanged.
Equations refer to docs/tp-algorithm.md (spec) sections 2-3.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def lif_step(v, current, alpha, vth, hard):
    """One LIF step in place (spec 2). Returns ``(v_pre, s)``; ``v`` becomes v^t.

    v_pre = alpha*v + current; s = [v_pre >= vth];
    v = v_pre - vth*s (soft) or v_pre*(1-s) (hard).
    """
    vpre = alpha * v + current
    s = (vpre >= vth).astype(v.dtype)
    if hard:
        v[...] = vpre * (1.0 - s)
    else:
        v[...] = vpre - vth * s
    return vpre, s


@njit(cache=True, error_model="numpy")
def surrogate(vpre, vth, gamma):
    """Type-1 surrogate derivative: gamma / (1 + (pi*(v_pre - vth))^2) (no 1/pi)."""
    z = math.pi * (vpre - vth)
    return gamma / (1.0 + z * z)


@njit(cache=True, error_model="numpy")
def softmax_rows(z):
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        m = z[i].max()
        e = np.exp(z[i] - m)
        out[i] = e / e.sum()
    return out


@njit(cache=True, error_model="numpy")
def soft_targets(p_rows, p_cols):
    """Y[b, k] = softmax_k(-D), D[b, k] = sqrt(sum_j (p_rows[b,j] - p_cols[k,j] + 1e-9)^2).

    Batch rule: p_rows = p_cols = target traces one layer below (spec 3).
    Class rule: p_rows = the label prototypes of each sample's class (spec 5).
    """
    B, K = p_rows.shape[0], p_cols.shape[0]
    d = np.empty((B, K), dtype=p_rows.dtype)
    for b in range(B):
        for k in range(K):
            acc = 0.0
            for j in range(p_rows.shape[1]):
                q = p_rows[b, j] - p_cols[k, j] + 1e-9
                acc += q * q
            d[b, k] = -math.sqrt(acc)
    return softmax_rows(d)


@njit(cache=True, error_model="numpy")
def contrastive_grads(h, g, y):
    """Layer-wise contrastive loss (spec 3): returns (dh, dg, loss).

    Z = h g^T; E = mean_b sum_b' -Y log softmax(Z); dZ = (softmax(Z) - Y)/B;
    dh = dZ g; dg = dZ^T h.
    """
    B = h.shape[0]
    z = h @ g.T
    p = softmax_rows(z)
    loss = 0.0
    for b in range(B):
        m = z[b].max()
        lse = m + math.log(np.exp(z[b] - m).sum())
        for k in range(z.shape[1]):
            loss -= y[b, k] * (z[b, k] - lse)
    dz = (p - y) / B
    return dz @ g, dz.T @ h, loss / B


@njit(cache=True, error_model="numpy", inline="always")
def _adam_row(w, g, m, v, step_size, beta1, beta2, eps, bc2s):
    """One row of the Adam update on 1-D views (a loop LLVM vectorises)."""
    for j in range(w.size):
        mj = beta1 * m[j] + (1.0 - beta1) * g[j]
        vj = beta2 * v[j] + (1.0 - beta2) * g[j] * g[j]
        m[j] = mj
        v[j] = vj
        w[j] -= step_size * mj / (math.sqrt(vj) / bc2s + eps)


@njit(cache=True, error_model="numpy", inline="always")
def _sgd_row(w, g, lr):
    for j in range(w.size):
        w[j] -= lr * g[j]


# The update kernels are serial: on 2 cores a parallel region stalls whenever another
# process holds a core (measured 25x slower under load), for at most 1.3x when idle.
@njit(cache=True, error_model="numpy")
def sgd_update(w, grad, lr):
    """W <- W - lr * grad (in place, on flat views: ``w.reshape(-1)``)."""
    for i in range(w.size):
        w[i] -= lr * grad[i]


@njit(cache=True, error_model="numpy")
def adam_update(w, grad, m, v, lr, beta1, beta2, eps, step):
    """PyTorch Adam (no weight decay, no amsgrad), in place; ``step`` starts at 1.

    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    W -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
    """
    bc1 = 1.0 - beta1**step
    bc2s = math.sqrt(1.0 - beta2**step)
    step_size = lr / bc1
    for i in range(w.size):
        g = grad[i]
        mi = beta1 * m[i] + (1.0 - beta1) * g
        vi = beta2 * v[i] + (1.0 - beta2) * g * g
        m[i] = mi
        v[i] = vi
        w[i] -= step_size * mi / (math.sqrt(vi) / bc2s + eps)


@njit(cache=True, error_model="numpy")
def outer_update(w, d1, p1, d2, p2, scale, adam, m, v, lr, beta1, beta2, eps, step, gout):
    """Fused gradient + optimizer step for one weight matrix (in place).

    grad = scale * (d1^T p1 + d2^T p2) (rank-B outer products, never stored unless
    ``gout`` has w's shape); then SGD (``adam`` False) or PyTorch Adam as in
    :func:`adam_update`. Rows whose factors are all zero cost no multiply (SGD).
    Used for small batches, where forming the gradient matrix costs more than the update.
    """
    n_out, n_in = w.shape
    record = gout.shape[0] == n_out
    bc1 = 1.0 - beta1**step
    bc2s = math.sqrt(1.0 - beta2**step) if adam else 1.0
    step_size = lr / bc1 if adam else lr
    g = np.empty(n_in, dtype=w.dtype)
    for i in range(n_out):
        g[:] = 0.0
        for b in range(d1.shape[0]):
            c = d1[b, i] * scale
            if c != 0.0:
                for j in range(n_in):
                    g[j] += c * p1[b, j]
        for b in range(d2.shape[0]):
            c = d2[b, i] * scale
            if c != 0.0:
                for j in range(n_in):
                    g[j] += c * p2[b, j]
        if record:
            gout[i] = g
        if adam:
            _adam_row(w[i], g, m[i], v[i], step_size, beta1, beta2, eps, bc2s)
        else:
            _sgd_row(w[i], g, lr)
