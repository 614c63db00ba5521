"""Random verification cases: a model, device settings and a script of steps.

A :class:`CaseSpec` holds every choice (shapes, neuron constants, widths, formats,
value styles, target set, optimizer, script shape); :func:`build_case` turns it into an
integer model and a script, deterministically from ``spec.seed``. ``edgetp verify-c
--random-models`` draws specs with :func:`random_spec`; the tests draw them with
hypothesis (tests/test_firmware_harness.py), so failures shrink.

Value styles push the integer rule to its edges: weights at the limits of their type,
inputs at the limits of theirs, all-zero rows, dense or sparse inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgetp.fixed.qconfig import QModel, int_type
from edgetp.fixed.update_q import KINDS, lr_code
from edgetp.model import expected_arrays
from edgetp.tp.config import DEFAULT_BETA_SHIFT, NetConfig

from firmware_gen.script import Script
from edgetp.fixed.device import DeviceConfig

WEIGHT_STYLES = ("uniform", "small", "extreme", "sparse")
INPUT_STYLES = ("normal", "extreme", "sparse", "zero")
# the trace and readout constants both samplers (random_spec, the tests' strategies) draw from, in this order
CONSTANTS = {"leak_t": (0.8, 0.9, 0.977, 0.99), "leak_out": (0.9, 1.0), "gamma": (0.5, 1.0, 10.0, 15.9)}


@dataclass
class CaseSpec:
    n_in: int = 4
    hidden: tuple = (5,)
    n_out: int = 3
    recurrent: bool = True
    reset: str = "hard"
    vth: float = 0.66
    leak_m: float = 0.77
    leak_t: float = 0.977
    leak_out: float = 1.0
    gamma: float = 10.0
    wbits: int = 16
    xbits: int = 16
    fx: int = 12
    fw: dict = field(default_factory=dict)  # per tensor; missing ones: 12 (wbits 16) or 6 (wbits 8)
    weight_style: str = "uniform"
    input_style: str = "normal"
    targets: str = "classes"
    optimizer: str = "colnorm"
    lr: float = 1e-3
    beta_shift: int = DEFAULT_BETA_SHIFT
    train: str = "all"
    clip: int = -1  # normalised rules' move limit 2^clip * lr (-1: none)
    update_every: int = 1  # the device learns on the steps t % update_every == 0 since the reset
    samples: int = 2
    steps: int = 6
    infer_every: int = 0  # every n-th step is inference (0: never)
    switch: bool = False  # change learning rate / optimizer between samples
    seed: int = 0
    frozen_hidden: bool = False  # hidden layers constant (flash), readout learns: train "readout"
    hbits: int | None = None  # width of the hidden tensors (None: wbits; another width: frozen only)
    row_scales: bool = False  # frozen only: W_0..W_{L-1} with one shift per row (row_fw)

    def describe(self) -> str:
        r = "r" if self.recurrent else ""
        net = "-".join([str(self.n_in), *(f"{h}{r}" for h in self.hidden), str(self.n_out)])
        return (
            f"{net} {self.reset} w{self.wbits} x{self.xbits} fx {self.fx} {self.weight_style}/{self.input_style} "
            f"{self.targets} {self.optimizer} lr {self.lr:g} beta {self.beta_shift} train {self.train} "
            f"clip {self.clip} "
            f"every {self.update_every} seed {self.seed}"
            + (f" frozen hidden h{self.hbits or self.wbits}" if self.frozen_hidden else "")
            + (" row scales" if self.row_scales else "")
        )


def _weights(rng, shape, bits, style) -> np.ndarray:
    hi = (1 << (bits - 1)) - 1
    if style == "extreme":
        a = rng.choice([-hi - 1, -hi, -1, 0, 1, hi], size=shape)
    elif style == "small":
        a = rng.integers(-4, 5, size=shape)
    elif style == "sparse":
        a = rng.integers(-hi - 1, hi + 1, size=shape) * (rng.random(shape) < 0.2)
    else:
        a = rng.integers(-hi // 2, hi // 2 + 1, size=shape)
    return a.astype(int_type(bits))


def build_model(spec: CaseSpec) -> QModel:
    cfg = NetConfig(
        spec.n_in,
        tuple(spec.hidden),
        spec.n_out,
        spec.recurrent,
        spec.vth,
        spec.leak_m,
        spec.leak_t,
        spec.leak_out,
        spec.gamma,
        spec.reset,
    )
    rng = np.random.default_rng(spec.seed)
    shapes = {n: s for n, s in expected_arrays(cfg).items() if n != "norm_scale"}  # weights only
    hbits = spec.hbits or spec.wbits
    bits = {n: spec.wbits if n == f"W{cfg.layers}" else hbits for n in shapes}
    weights = {n: _weights(rng, s, bits[n], spec.weight_style) for n, s in shapes.items()}
    fw = {n: int(spec.fw.get(n, 12 if bits[n] == 16 else 6)) for n in shapes}
    fw_rows = row_fw(spec, weights, hbits) if spec.row_scales else {}
    return QModel(
        cfg,
        spec.wbits,
        spec.fx,
        weights,
        fw,
        spec.xbits,
        [f"c{k}" for k in range(cfg.n_out)],
        hbits=hbits,
        frozen_hidden=spec.frozen_hidden,
        fw_rows=fw_rows,
    )


def row_fw(spec: CaseSpec, weights: dict, hbits: int) -> dict:
    """Row scales of W_0..W_{L-1} (their own generator: the other draws stay as without): each row's
    fractional bits in [0, 24], the first row 0 and the last 24 (the extremes), and its weights
    shrunk by a random power of two (rows of different magnitudes, in place)."""
    rng = np.random.default_rng(spec.seed + 2)
    out = {}
    for l, h in enumerate(spec.hidden):
        f = rng.integers(0, 25, size=h)
        f[0], f[-1] = (0, 24) if h > 1 else (f[0], f[0])
        w = weights[f"W{l}"]
        w >>= rng.integers(0, hbits - 1, size=(h, 1)).astype(w.dtype)
        out[f"W{l}"] = f
    return out


def _inputs(rng, n, spec: CaseSpec) -> np.ndarray:
    hi = (1 << (spec.xbits - 1)) - 1
    if spec.input_style == "extreme":
        x = rng.choice([-hi - 1, -hi, 0, 1, hi], size=n)
    elif spec.input_style == "sparse":
        x = rng.integers(-hi - 1, hi + 1, size=n) * (rng.random(n) < 0.15)
    elif spec.input_style == "zero":
        x = np.zeros(n, dtype=np.int64)
    else:
        x = np.clip(np.round(rng.standard_normal(n) * 2.0 ** min(spec.fx, spec.xbits - 2)), -hi - 1, hi)
    return x.astype(int_type(spec.xbits))


def build_script(spec: CaseSpec) -> Script:
    rng = np.random.default_rng(spec.seed + 1)
    ops = [("init", int(rng.integers(0, 2**32)))]
    first = None
    for smp in range(spec.samples):
        ops.append(("reset",))
        label = int(rng.integers(0, spec.n_out))
        xs = [_inputs(rng, spec.n_in, spec) for _ in range(spec.steps)]
        if smp == 1 and first is not None:
            xs, label = first  # the same sample twice: state over time is what breaks
        first = first or (xs, label)
        for t, x in enumerate(xs):
            if spec.infer_every and t % spec.infer_every == spec.infer_every - 1:
                ops.append(("infer", x))
            else:
                ops.append(("train", x, label))
        ops.append(("end_sample",))
        if spec.switch and smp % 2 == 0:
            m, e = lr_code(spec.lr * float(rng.choice([0.0, 0.25, 4.0])))
            other = KINDS[(KINDS.index(spec.optimizer) + 1) % len(KINDS)]
            ops += [("lr", m, e), ("opt", other, int(rng.integers(0, 16)), spec.train, int(rng.integers(-1, 3)))]
    if spec.switch:
        ops += [
            ("init", int(rng.integers(0, 2**32))),
            ("reset",),
            ("train", _inputs(rng, spec.n_in, spec), 0),
            ("end_sample",),
        ]
    return Script(ops)


def device_config(spec: CaseSpec) -> DeviceConfig:
    return DeviceConfig(
        spec.targets,
        spec.optimizer,
        spec.lr,
        spec.beta_shift,
        spec.train,
        spec.clip,
        lr_max=4.0 * spec.lr,
        update_every=spec.update_every,  # the scripts switch to up to 4 lr
        frozen_hidden=spec.frozen_hidden,
    )


def random_spec(rng: np.random.Generator) -> CaseSpec:
    """A spec drawn with NumPy (edgetp verify-c --random-models); one in five is frozen-hidden
    (train readout, hidden tensors int8 or int16), half of those with row scales (by the parity of
    the case's seed: no extra draw, the other cases are those drawn before row scales existed)."""
    L = int(rng.integers(1, 4))
    wbits, xbits = int(rng.choice([8, 16])), int(rng.choice([8, 16]))
    tensors = [f"W{i}" for i in range(L + 1)] + [f"R{i}" for i in range(L)] + ["S", "S_rec"]
    wf = (0, 16) if wbits == 16 else (0, 8)
    spec = CaseSpec(
        n_in=int(rng.integers(1, 13)),
        hidden=tuple(int(h) for h in rng.integers(1, 11, size=L)),
        n_out=int(rng.integers(2, 7)),
        recurrent=bool(rng.random() < 0.6),
        reset=str(rng.choice(["hard", "soft"])),
        vth=float(rng.choice([0.05, 0.66, 1.0, 3.0])),
        leak_m=float(rng.choice([0.0, 0.5, 0.77, 0.95, 1.0])),
        **{k: float(rng.choice(v)) for k, v in CONSTANTS.items()},
        wbits=wbits,
        xbits=xbits,
        fx=int(rng.integers(0, 13 if xbits == 16 else 7)),
        fw={n: int(rng.integers(*wf)) for n in tensors},
        weight_style=str(rng.choice(WEIGHT_STYLES)),
        input_style=str(rng.choice(INPUT_STYLES, p=[0.55, 0.2, 0.2, 0.05])),
        targets=str(rng.choice(["classes", "batch"])),
        optimizer=str(rng.choice(KINDS)),
        lr=float(rng.choice([0.0, 1e-4, 1e-3, 1e-2, 0.1])),
        beta_shift=int(rng.integers(0, 16)),
        train=str(rng.choice(["all", "readout"], p=[0.85, 0.15])),
        clip=int(rng.choice([-1, -1, 0, 1, 3])),
        samples=int(rng.integers(1, 4)),
        steps=int(rng.integers(1, 9)),
        infer_every=int(rng.choice([0, 0, 2, 3])),
        switch=bool(rng.random() < 0.3),
        seed=int(rng.integers(0, 2**31)),
        update_every=int(rng.choice([1, 2, 3])),
    )
    if rng.random() < 0.2:
        spec.frozen_hidden, spec.train, spec.hbits = True, "readout", int(rng.choice([8, 16]))
        hf = (0, 16) if spec.hbits == 16 else (0, 8)
        spec.fw.update({n: int(rng.integers(*hf)) for n in tensors if n != f"W{L}"})
        spec.row_scales = spec.seed % 2 == 0
    return spec
