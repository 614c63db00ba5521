"""Integer TP kernels: one equation each, all integer, numba-compiled (C twins ``etp_<name>``).

Every kernel reads integer arrays, computes in int64 and writes integer arrays; the
rounding and saturation of each line is the one named in docs/fixed-point.md. Loops
are written in C order on purpose (the C twin mirrors them; integer sums do not
depend on the order, so a C version may reorder or fuse them freely).
Shapes: B data rows, K target rows (batch: K = B, classes: K = O), H neurons.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetp.fixed.primitives import (
    INT16_MAX,
    INT16_MIN,
    INT32_MAX,
    INT32_MIN,
    Q15_ONE,
    div_round,
    isqrt,
    round_shift,
    sat,
    softmax_q,
)

DELTA_LIMIT = np.int64(1) << 47  # delta (|delta| <= 2^47 keeps delta * int16 input < 2^63)
GRAD_LIMIT = np.int64(1) << 58  # raw gradients are saturated to +-2^58
PI_Q16 = 205887  # round(pi * 2^16)
SURR_D_MAX = np.int64(1) << 26  # |v - vth| is clamped to 2^14 membrane units (Q.12)


@njit(cache=True)
def _nonzero(row, idx):
    """Write the indices of row's nonzero entries to idx; return their count (skipping zero
    inputs changes no sum: it only saves time, as it will on the device for spikes)."""
    n = 0
    for j in range(row.shape[0]):
        if row[j] != 0:
            idx[n] = j
            n += 1
    return n


@njit(cache=True)
def lif_step_q(v, x, W, sh_x, s_prev, R, sh_r, rec, alpha_q, vth_q, hard):
    """LIF step of one stream of one layer (spec 2). Returns ``(v_new, s_new, v_pre)``.

    cur   = round_shift(sum_j W[i,j] x[b,j], sh_x[i]) (+ round_shift(sum_j R[i,j] s_prev[b,j], sh_r))
    v_pre = sat32(round_shift(alpha_q * v, 15) + cur)          membrane int32 Q.FV
    s     = v_pre >= vth_q;  v_new = 0 (hard) or v_pre - vth_q (soft) where s, else v_pre.
    ``sh_x`` holds one shift per neuron (int64, (H,)): all equal (QModel.in_shift) with one scale
    per tensor, each row's own with row scales (QModel.in_shifts).
    """
    B, H = v.shape
    v_new = np.empty_like(v)
    vpre = np.empty_like(v)
    s = np.zeros((B, H), dtype=np.int8)
    ix = np.empty(x.shape[1], dtype=np.int64)
    ir = np.empty(H, dtype=np.int64)
    for b in range(B):
        nx = _nonzero(x[b], ix)
        nr = _nonzero(s_prev[b], ir) if rec else 0
        for i in range(H):
            acc = np.int64(0)
            for t in range(nx):
                acc += np.int64(W[i, ix[t]]) * np.int64(x[b, ix[t]])
            cur = round_shift(acc, sh_x[i])
            if rec:
                acc = np.int64(0)
                for t in range(nr):
                    acc += np.int64(R[i, ir[t]]) * np.int64(s_prev[b, ir[t]])
                cur += round_shift(acc, sh_r)
            vp = sat(round_shift(np.int64(alpha_q) * np.int64(v[b, i]), 15) + cur, INT32_MIN, INT32_MAX)
            vpre[b, i] = vp
            if vp >= vth_q:
                s[b, i] = 1
                v_new[b, i] = 0 if hard else vp - vth_q
            else:
                v_new[b, i] = vp
    return v_new, s, vpre


@njit(cache=True)
def trace_step_q(tr, s, lam_q, ft):
    """tr_new = sat16(round_shift(lam_q * tr, 15) + s * 2^ft)  (int16 Q.ft)."""
    out = np.empty_like(tr)
    for b in range(tr.shape[0]):
        for i in range(tr.shape[1]):
            out[b, i] = sat(
                round_shift(np.int64(lam_q) * np.int64(tr[b, i]), 15) + (np.int64(s[b, i]) << ft), INT16_MIN, INT16_MAX
            )
    return out


@njit(cache=True)
def readout_step_q(u, s, W, beta_q):
    """u_new = sat32(round_shift(beta_q * u, 15) + sum_j W[k,j] s[b,j])  (int32, W's format)."""
    out = np.empty_like(u)
    for b in range(u.shape[0]):
        for k in range(u.shape[1]):
            acc = np.int64(0)
            for j in range(s.shape[1]):
                acc += np.int64(W[k, j]) * np.int64(s[b, j])
            out[b, k] = sat(round_shift(np.int64(beta_q) * np.int64(u[b, k]), 15) + acc, INT32_MIN, INT32_MAX)
    return out


@njit(cache=True)
def surrogate_q(vpre, vth_q, gamma_q):
    """sigma'(v_pre) = gamma / (1 + (pi (v_pre - vth))^2) in Q.20 (int64 values < 2^31):

    d = min(|v_pre - vth_q|, 2^26) (Q.12); pd = round_shift(PI_Q16 * d, 16) (pi*d, Q.12);
    sigma' = floor((gamma_q * 2^24 + den / 2) / den), den = 2^24 + pd^2 (round half up).
    """
    out = np.empty(vpre.shape, dtype=np.int64)
    for b in range(vpre.shape[0]):
        for i in range(vpre.shape[1]):
            d = np.int64(vpre[b, i]) - vth_q
            d = min(-d if d < 0 else d, SURR_D_MAX)
            pd = round_shift(PI_Q16 * d, 16)
            den = (np.int64(1) << 24) + pd * pd
            out[b, i] = ((np.int64(gamma_q) << 24) + (den >> 1)) // den
    return out


@njit(cache=True)
def soft_targets_q(p_rows, p_cols, ft):
    """Y[b,k] = softmax_k(-D[b,k]) in Q0.15, D = isqrt(sum_j (p_rows[b,j] - p_cols[k,j])^2) in Q.ft.

    The float rule's +1e-9 inside the square is below one LSB and is dropped.
    """
    B, K = p_rows.shape[0], p_cols.shape[0]
    y = np.empty((B, K), dtype=np.int64)
    negd = np.empty(K, dtype=np.int64)
    for b in range(B):
        for k in range(K):
            acc = np.int64(0)
            for j in range(p_rows.shape[1]):
                q = np.int64(p_rows[b, j]) - np.int64(p_cols[k, j])
                acc += q * q
            negd[k] = -isqrt(acc)
        softmax_q(negd, ft, y[b])
    return y


@njit(cache=True)
def contrastive_grads_q(h, g, y, ft, bdiv):
    """Layer-wise contrastive gradients (spec 3/5). Returns ``(dh, dg)``, int64 Q.(15+ft).

    Z[b,k] = sum_i h[b,i] g[k,i] (Q.2ft); dZ = div_round(softmax_q(Z_b, 2ft) - Y, bdiv) (Q.15);
    dh = dZ g; dg = dZ^T h.
    """
    B, K, H = h.shape[0], g.shape[0], h.shape[1]
    z = np.empty(K, dtype=np.int64)
    p = np.empty(K, dtype=np.int64)
    dz = np.empty((B, K), dtype=np.int64)
    for b in range(B):
        for k in range(K):
            acc = np.int64(0)
            for i in range(H):
                acc += np.int64(h[b, i]) * np.int64(g[k, i])
            z[k] = acc
        softmax_q(z, 2 * ft, p)
        for k in range(K):
            dz[b, k] = div_round(p[k] - y[b, k], bdiv)
    dh = np.zeros((B, H), dtype=np.int64)
    dg = np.zeros((K, H), dtype=np.int64)
    for b in range(B):
        for k in range(K):
            for i in range(H):
                dh[b, i] += dz[b, k] * np.int64(g[k, i])
                dg[k, i] += dz[b, k] * np.int64(h[b, i])
    return dh, dg


@njit(cache=True)
def delta_q(d, sig, shift):
    """delta = sat(round_shift(d * sigma', shift), +-2^47): Q.(15+ft) x Q.20 -> Q.DELTA_F (int64)."""
    out = np.empty(d.shape, dtype=np.int64)
    for b in range(d.shape[0]):
        for i in range(d.shape[1]):
            out[b, i] = sat(round_shift(d[b, i] * sig[b, i], shift), -DELTA_LIMIT, DELTA_LIMIT)
    return out


@njit(cache=True)
def outer_acc_q(g, delta, x):
    """g[i,j] = sat(g[i,j] + delta[b,i] x[b,j], +-2^58) for b = 0, 1, ... (in place; int64)."""
    ix = np.empty(x.shape[1], dtype=np.int64)
    for b in range(delta.shape[0]):
        n = _nonzero(x[b], ix)
        for i in range(g.shape[0]):
            d = delta[b, i]
            if d != 0:
                for t in range(n):
                    j = ix[t]
                    g[i, j] = sat(g[i, j] + d * np.int64(x[b, j]), -GRAD_LIMIT, GRAD_LIMIT)


@njit(cache=True)
def readout_error_q(u, labels, fo, bdiv):
    """e[b,k] = div_round(softmax_q(u_b, fo)[k] - 2^15 [k == label_b], bdiv)  (Q.15)."""
    B, O = u.shape
    e = np.empty((B, O), dtype=np.int64)
    z = np.empty(O, dtype=np.int64)
    p = np.empty(O, dtype=np.int64)
    for b in range(B):
        for k in range(O):
            z[k] = u[b, k]
        softmax_q(z, fo, p)
        for k in range(O):
            e[b, k] = div_round(p[k] - (Q15_ONE if k == labels[b] else 0), bdiv)
    return e
