"""The integer model: int weights, their Q-formats and the integer neuron constants.

A :class:`QModel` is everything the integer rule (and the C twin) needs; no float is
read once it exists. Scales are powers of two: a tensor with ``f`` fractional bits
stores ``round(value * 2^f)``. Formats (docs/fixed-point.md, section 2):

- inputs x: int16 (or int8, ``xbits``), ``fx`` fractional bits (chosen from calibration data);
- weights W_l, R_l (train) and S, S_rec (frozen): int8 or int16 (``wbits``), per-tensor
  fractional bits ``fw[name]``; a *frozen-hidden* model (``frozen_hidden``: only the readout
  W_L learns) may store its hidden tensors W_0..W_{L-1}, R_l, S, S_rec at another width
  ``hbits`` (int8 in a device's flash, the readout int16 in RAM), and its hidden input weights
  W_0..W_{L-1} with one scale per row (``fw_rows[name]``, ``row_scales``): a few large weights
  then cost only their own neuron's resolution, as in per-channel int8 quantization;
- membrane: int32 Q.FV (FV = 12), threshold ``vth_q``; leaks alpha, lambda, beta: Q0.15;
- spikes: int8 0/1; traces: int16 Q.``ft`` (largest ft with 2^ft / (1 - lambda) < 2^15);
- readout u: int32 in the readout weights' format ``fw["W<L>"]``;
- surrogate: ``gamma_q`` = gamma in Q.SURR_F; sigma' computed with one integer division
  (kernels_q.surrogate_q), int32 Q.SURR_F.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp.config import NetConfig, trainable_names

FV = 12  # membrane fractional bits (int32 Q19.12)
Q15 = 15  # leaks, probabilities, soft targets, dZ, readout error
SURR_F = 20  # surrogate derivative: int32 Q.20 (gamma < 2^11)
DELTA_F = 32  # delta = dh * surrogate: int64 Q.32
WBITS = (8, 16)


def frac_bits(max_abs: float, bits: int, headroom: float = 1.0) -> int:
    """Largest f with ``headroom * max_abs * 2^f <= 2^(bits-1) - 1`` (f in [0, 24])."""
    qmax = (1 << (bits - 1)) - 1
    if not max_abs > 0:
        return 24 if bits > 8 else 12
    return int(min(24, max(0, math.floor(math.log2(qmax / (headroom * max_abs))))))


def row_frac_bits(a: np.ndarray, bits: int, headroom: float = 1.0) -> np.ndarray:
    """frac_bits of each row's max|a[i, :]| (int64, one per row)."""
    m = np.abs(np.asarray(a, dtype=np.float64)).max(axis=1) if a.size else np.zeros(a.shape[0])
    return np.array([frac_bits(float(x), bits, headroom) for x in m], dtype=np.int64)


def int_type(bits: int):
    """The NumPy type of a signed ``bits``-wide weight or input (8 or 16)."""
    return np.int8 if bits == 8 else np.int16


def quantize_array(a: np.ndarray, f, bits: int) -> np.ndarray:
    """round-half-up(a * 2^f) saturated to signed ``bits``; the one float->int conversion
    (weights, and the inputs through ``quantize.quantize_inputs``). ``f`` may be an array that
    broadcasts against ``a`` (a column of per-row fractional bits)."""
    qmax = (1 << (bits - 1)) - 1
    q = np.floor(np.asarray(a, dtype=np.float64) * (2.0 ** np.asarray(f, dtype=np.float64)) + 0.5)
    return np.clip(q, -qmax - 1, qmax).astype(int_type(bits))


def gamma_bits(gamma: float) -> int:
    """gamma in Q.SURR_F (round half up); it must fit int32."""
    q = int(math.floor(gamma * (1 << SURR_F) + 0.5))
    if not 0 < q < (1 << 31):
        raise EdgetpError(f"surrogate scale gamma {gamma} must lie in (0, {2 ** (31 - SURR_F)})")
    return q


def q15(x: float) -> int:
    return int(math.floor(x * (1 << Q15) + 0.5))


def trace_bits(leak_t: float) -> int:
    """Largest ft such that a neuron spiking at every step, 2^ft / (1 - lambda), fits int16."""
    steady = 1.0 / max(1.0 - leak_t, 1.0 / 32768)
    return int(max(0, min(14, math.floor(math.log2(32767 / steady)))))


@dataclass
class QModel:
    """Integer TP network. ``weights`` maps W0..WL, R0..R{L-1}, S, S_rec to int arrays
    (the trainable ones are updated in place); ``fw`` their fractional bits."""

    cfg: NetConfig
    wbits: int
    fx: int
    weights: dict
    fw: dict
    xbits: int = 16
    labels: list = field(default_factory=list)
    report: dict = field(default_factory=dict)
    hbits: int | None = None  # width of the hidden tensors (None: wbits)
    frozen_hidden: bool = False  # only the readout W_L learns (train "readout" only)
    fw_rows: dict | None = None  # W_l (l < L) -> per-row fractional bits (H_l,): row scales (frozen only)

    def __post_init__(self):
        self.hbits = self.wbits if self.hbits is None else int(self.hbits)
        self.frozen_hidden = bool(self.frozen_hidden)
        if self.wbits not in WBITS or self.xbits not in WBITS or self.hbits not in WBITS:
            raise EdgetpError(
                f"weight, hidden-weight and input bits must be one of {WBITS}, got {self.wbits}, "
                f"{self.hbits}, {self.xbits}"
            )
        if self.hbits != self.wbits and not self.frozen_hidden:
            raise EdgetpError(
                f"hidden weights of {self.hbits} bits with {self.wbits}-bit weights need a frozen-hidden "
                "model (only the readout learns)"
            )
        self.fw_rows = check_row_scales(self, self.fw_rows)
        c = self.cfg
        self.vth_q = int(math.floor(c.vth * (1 << FV) + 0.5))
        self.alpha_q, self.lam_q, self.beta_q = q15(c.leak_m), q15(c.leak_t), q15(c.leak_out)
        self.ft = trace_bits(c.leak_t)
        self.gamma_q = gamma_bits(c.gamma)
        self.hard = c.reset == "hard"
        self._trainable = trainable_names(c)

    @property
    def trainable_names(self) -> list[str]:
        """W0..WL, then R0..R{L-1} (recurrent nets): the update and PRNG draw order."""
        return self._trainable

    @property
    def readout_name(self) -> str:
        return f"W{self.cfg.layers}"

    def widths(self) -> str:
        """The weight widths in words, for reports: "int16 weights", or "int16 readout, frozen int8 hidden layers"."""
        if self.frozen_hidden:
            rows = f" (one scale per row of {', '.join(self.fw_rows)})" if self.row_scales else ""
            return f"int{self.wbits} readout, frozen int{self.hbits} hidden layers{rows}"
        return f"int{self.wbits} weights"

    def bits_of(self, name: str) -> int:
        """Width of weight tensor ``name``: ``wbits`` for the readout, ``hbits`` for the hidden ones."""
        return self.wbits if name == self.readout_name else self.hbits

    def named_arrays(self) -> list[tuple[str, np.ndarray]]:
        """Every weight array in a fixed order: trainable first, then S, S_rec."""
        names = self.trainable_names + ["S"] + (["S_rec"] if self.cfg.recurrent else [])
        return [(n, self.weights[n]) for n in names]

    @property
    def row_scales(self) -> bool:
        """True when some hidden input weights have one scale per row (``fw_rows``)."""
        return bool(self.fw_rows)

    def frac_of(self, name: str):
        """Fractional bits of tensor ``name``: ``fw[name]``, or a column (H, 1) of its rows' bits."""
        return self.fw_rows[name][:, None] if name in self.fw_rows else self.fw[name]

    def in_shift(self, layer: int, target: bool = False) -> int:
        """Right shift bringing layer ``layer``'s input sum (W x) to the membrane format (per tensor)."""
        if target and layer == 0:
            return self.fw["S"] - FV
        return self.fw[f"W{layer}"] + (self.fx if layer == 0 else 0) - FV

    def in_shifts(self, layer: int, target: bool = False) -> np.ndarray:
        """in_shift for each neuron of layer ``layer`` (int64, (H,)): the row's own with row scales,
        else in_shift for all (the kernel takes one shift per row either way)."""
        name = f"W{layer}"
        if not target and name in self.fw_rows:
            return self.fw_rows[name] + ((self.fx if layer == 0 else 0) - FV)
        return np.full(self.cfg.hidden[layer], self.in_shift(layer, target), dtype=np.int64)

    def rec_shift(self, layer: int, target: bool = False) -> int:
        return self.fw["S_rec" if target and layer == 0 else f"R{layer}"] - FV

    def with_row_scales(self, fw_rows: dict) -> "QModel":
        """This network, frozen-hidden, with per-row fractional bits ``fw_rows`` (its arrays shared, not copied)."""
        return replace(self, frozen_hidden=True, fw_rows=fw_rows)

    def copy(self) -> "QModel":
        return QModel(
            self.cfg,
            self.wbits,
            self.fx,
            {k: v.copy() for k, v in self.weights.items()},
            dict(self.fw),
            self.xbits,
            list(self.labels),
            dict(self.report),
            self.hbits,
            self.frozen_hidden,
            {k: v.copy() for k, v in self.fw_rows.items()},
        )

    @property
    def xdtype(self):
        return int_type(self.xbits)


def row_scaled_names(cfg: NetConfig) -> list[str]:
    """The tensors that may carry row scales: the hidden layers' input weights W_0..W_{L-1}
    (R, S, S_rec keep one scale: in the float emulation W0 alone lost accuracy, README of
    experiments/results/real_speech)."""
    return [f"W{l}" for l in range(cfg.layers)]


def check_row_scales(qm: QModel, fw_rows) -> dict:
    """``fw_rows`` checked (only frozen hidden input weights, one int in [0, 24] per row) as int64 arrays."""
    fw_rows = dict(fw_rows or {})
    if fw_rows and not qm.frozen_hidden:
        raise EdgetpError(
            "row scales (one scale per row of the hidden weights) need a frozen-hidden model: "
            "a learning layer's update keeps one scale per tensor"
        )
    out = {}
    for name, f in fw_rows.items():
        if name not in row_scaled_names(qm.cfg):
            raise EdgetpError(f"row scales apply to {', '.join(row_scaled_names(qm.cfg))}, not {name!r}")
        f = np.asarray(f)
        rows = qm.cfg.hidden[int(name[1:])]
        if f.shape != (rows,) or f.dtype.kind not in "iu" or f.min(initial=0) < 0 or f.max(initial=0) > 24:
            raise EdgetpError(f"row scales of {name}: {rows} integers in [0, 24] expected, got {f.dtype} {f.shape}")
        out[name] = f.astype(np.int64)
    return out


def float_tensors(params) -> dict:
    """The float weights by the integer model's names: W0..WL, R0.., S_rec (recurrent), S."""
    return params.named()


def from_float(
    cfg: NetConfig,
    params,
    fx: int,
    wbits: int = 8,
    headroom: float = 1.0,
    labels=None,
    xbits: int = 16,
    hbits: int | None = None,
    frozen_hidden: bool = False,
    row_scales: bool = False,
) -> QModel:
    """Quantize float ``params`` with per-tensor power-of-two scales (``headroom`` >= 1
    leaves room for fine-tuning to grow the weights): the readout W_L at ``wbits``, the
    hidden tensors at ``hbits`` (default ``wbits``; another width needs ``frozen_hidden``).
    ``row_scales`` (frozen-hidden only): W_0..W_{L-1} with one power-of-two scale per row,
    each row's from its own max|W[i, :]|; ``fw`` keeps the tensor's (the coarsest row's)."""
    hbits = wbits if hbits is None else hbits
    if wbits not in WBITS or hbits not in WBITS:
        raise EdgetpError(f"weight bits must be one of {WBITS}, got {wbits}, {hbits}")
    if row_scales and not frozen_hidden:
        raise EdgetpError("row scales need a frozen-hidden model (only the readout learns)")
    fw, weights, fw_rows = {}, {}, {}
    readout = f"W{cfg.layers}"
    rowed = row_scaled_names(cfg) if row_scales else []
    for n, a in float_tensors(params).items():
        bits = wbits if n == readout else hbits
        room = headroom if n[0] in "WR" else 1.0
        fw[n] = frac_bits(float(np.abs(a).max()), bits, room)
        if n in rowed:
            fw_rows[n] = row_frac_bits(a, bits, room)
        weights[n] = quantize_array(a, fw_rows[n][:, None] if n in rowed else fw[n], bits)
    return QModel(
        cfg,
        wbits,
        int(fx),
        weights,
        fw,
        xbits,
        list(labels or []),
        hbits=hbits,
        frozen_hidden=frozen_hidden,
        fw_rows=fw_rows,
    )
