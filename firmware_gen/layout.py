"""The device layout: every array the C twin holds, described once.

The generator writes these arrays into ``etp_model.c``, the memory plan sums them, the
tensor table (``etp_tensor()``) lists the ``table`` ones in this order, and
:func:`firmware_gen.tensors.state_tensors` returns the Python twin of that table. One
list, three uses: nothing can drift between them.

Order of the tensor table (docs/firmware-api.md):

1. trainable weights ``W0..WL, R0..R{L-1}`` (RAM, writable), in ``QModel.trainable_names`` order;
2. frozen weights ``S`` (and ``S_rec``) (flash, read-only);
3. neuron state of the data stream ``v{l} s{l} tr{l}`` for every layer, then of the target
   set ``vt{l} st{l} trt{l}``, the label trace ``trl``, the readout ``u``, the step count
   ``steps`` (steps since the last reset);
4. optimizer: ``rng`` (xorshift32 state), ``opt_steps``, ``opt_cfg`` (kind, lr_m, lr_e,
   beta_shift, train_all, clip) and the normalised rules' statistics ``rr_<name>``, ``cc_<name>``.

A frozen-hidden model (``QModel.frozen_hidden``: only the readout learns) has another layout:
the trainable weights are the readout ``W<L>`` alone; the hidden ``W0..W{L-1}, R0..`` are
constants in flash (group "frozen weights", their own width ``hbits``, C type ``etp_wh_t``);
there is no target set (no S, S_rec, target state, label trace, target-stream tables, K = 0)
and no hidden-layer learning scratch; the optimizer keeps the readout's statistics only.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed import primitives as P
from edgetp.fixed.qconfig import QModel
from edgetp.tp.config import TARGETS

from edgetp.fixed.contract import DTYPES, OPT_CFG_FIELDS   # noqa: F401  (re-exported: one dtype table)

RAM_GROUPS = ("trainable weights", "data state", "target set", "optimizer", "scratch")
FLASH_GROUPS = ("frozen weights", "initial weights", "tables")
STORE_GROUPS = ("weight store",)     # flash outside the image: firmware_gen/store.py
# What a device saves to go on learning exactly as before (firmware_gen/store.py): the
# trainable weights and the whole optimizer group (PRNG, step count, settings, statistics).
PERSIST_GROUPS = ("trainable weights", "optimizer")
TENSOR_ENTRY_BYTES = 16     # sizeof(etp_tensor_t) on a 32-bit target (4 + 1 + 1 + pad 2 + 4 + 4)

C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Bool _Complex _Imaginary""".split())
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Item:
    """One array on the device."""

    name: str                  # tensor name; the C array is ``etp_<name>``
    dtype: str                 # key of DTYPES, or "w" for the model's weight type
    shape: tuple
    section: str               # "ram" or "flash"
    group: str                 # memory-plan group
    table: bool = False        # listed in the tensor table
    init: np.ndarray | None = None   # contents (flash arrays)
    note: str = ""

    @property
    def cname(self) -> str:
        return f"etp_{self.name}"

    @property
    def count(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def writable(self) -> bool:
        return self.section == "ram"


@dataclass
class Layout:
    qm: QModel
    targets: str
    items: list
    dims: dict                 # sizes the runtime needs (K, widths, ...)

    def item(self, name: str) -> Item:
        for it in self.items:
            if it.name == name:
                return it
        raise KeyError(name)

    def table(self) -> list:
        return [it for it in self.items if it.table]

    def dtype_of(self, it: Item) -> str:
        """Resolve the model-dependent weight types "w" (wbits) and "wh" (hidden, hbits)."""
        if it.dtype in ("w", "wh"):
            return "i8" if (self.qm.wbits if it.dtype == "w" else self.qm.hbits) == 8 else "i16"
        return it.dtype

    def nbytes(self, it: Item) -> int:
        return it.count * np.dtype(DTYPES[self.dtype_of(it)][2]).itemsize

    def ctype(self, it: Item) -> str:
        return {"w": "etp_w_t", "wh": "etp_wh_t"}.get(it.dtype) or DTYPES[it.dtype][1]


def persistent(lay: Layout) -> list:
    """The table tensors the weight store saves, in table order (groups PERSIST_GROUPS)."""
    return [it for it in lay.table() if it.group in PERSIST_GROUPS]


def n_targets(qm: QModel, targets: str) -> int:
    """Rows of the target set on the device (batch size 1): O for "classes", 1 for "batch",
    0 for a frozen-hidden model (no target set)."""
    if targets not in TARGETS:
        raise EdgetpError(f"targets must be one of {TARGETS}, got {targets!r}")
    if qm.frozen_hidden:
        return 0
    return qm.cfg.n_out if targets == "classes" else 1


def device_trainable(qm: QModel) -> list[str]:
    """The tensors the device trains (RAM, optimizer statistics, etp_params order):
    ``trainable_names``, or the readout alone for a frozen-hidden model."""
    return [qm.readout_name] if qm.frozen_hidden else list(qm.trainable_names)


def frozen_hidden_names(qm: QModel) -> list[str]:
    """The hidden tensors a frozen-hidden device keeps in flash, in ``trainable_names`` order."""
    return [n for n in qm.trainable_names if n != qm.readout_name] if qm.frozen_hidden else []


def device_layout(qm: QModel, targets: str = "classes") -> Layout:
    """Every array of the C twin of ``qm`` (batch 1, the given target set)."""
    if qm.frozen_hidden:
        return _frozen_layout(qm, targets)
    c = qm.cfg
    L, H, O, N0, rec = c.layers, list(c.hidden), c.n_out, c.n_in, c.recurrent
    K = n_targets(qm, targets)
    items: list[Item] = []
    add = items.append
    for n in qm.trainable_names:
        add(Item(n, "w", qm.weights[n].shape, "ram", "trainable weights", True))
    for n in ["S"] + (["S_rec"] if rec else []):
        add(Item(n, "w", qm.weights[n].shape, "flash", "frozen weights", True, qm.weights[n]))
    for l in range(L):
        add(Item(f"v{l}", "i32", (H[l],), "ram", "data state", True))
        add(Item(f"s{l}", "i8", (H[l],), "ram", "data state", True))
        add(Item(f"tr{l}", "i16", (H[l],), "ram", "data state", True))
    tab = target_stream_table(qm, targets)
    for l in range(L):
        if not (l == 0 and tab is not None):      # a tabulated stream keeps no membrane ...
            add(Item(f"vt{l}", "i32", (K, H[l]), "ram", "target set", True))
        elif len(tab.v_resume):                   # ... but for the rows that resume on the device
            add(Item("vt0_resume", "i32", tab.v_resume.shape, "ram", "target set", True,
                     note="membrane of each row that does not repeat, zero before its switch"))
        add(Item(f"st{l}", "i8", (K, H[l]), "ram", "target set", True))
        add(Item(f"trt{l}", "i16", (K, H[l]), "ram", "target set", True))
    add(Item("trl", "i16", (K, O), "ram", "target set", True, note="label trace"))
    add(Item("u", "i32", (O,), "ram", "data state", True, note="readout"))
    add(Item("steps", "u32", (1,), "ram", "data state", True, note="steps since the reset"))
    if tab is not None:
        add(Item("tsteps", "u32", (1,), "ram", "target set", True, note="training steps since the reset"))
    add(Item("rng", "u32", (1,), "ram", "optimizer", True, note="xorshift32 state"))
    add(Item("opt_steps", "u32", (1,), "ram", "optimizer", True))
    add(Item("opt_cfg", "i32", (len(OPT_CFG_FIELDS),), "ram", "optimizer", True, note=", ".join(OPT_CFG_FIELDS)))
    for n in qm.trainable_names:
        rows, cols = qm.weights[n].shape
        add(Item(f"rr_{n}", "i64", (rows,), "ram", "optimizer", True, note="row mean-square EMA"))
        add(Item(f"cc_{n}", "i64", (cols,), "ram", "optimizer", True, note="column mean-square EMA"))
    # initial values of the trainable weights (etp_init copies them to RAM)
    for n in qm.trainable_names:
        add(Item(f"{n}_init", "w", qm.weights[n].shape, "flash", "initial weights", False, qm.weights[n]))
    # scratch: one step's intermediate values
    widths = [N0, *H, O]
    wmax, hmax = max(widths), max(H)
    rows_max = max(qm.weights[n].shape[0] for n in qm.trainable_names)
    cols_max = max(qm.weights[n].shape[1] for n in qm.trainable_names)
    for l in range(L):
        if rec:
            add(Item(f"s_prev{l}", "i8", (H[l],), "ram", "scratch", note="spikes of the previous step"))
            if l >= 1:                            # only the target terms of layers >= 1 read it
                add(Item(f"st_prev{l}", "i8", (K, H[l]), "ram", "scratch"))
        add(Item(f"vpre{l}", "i32", (H[l],), "ram", "scratch", note="membrane before spike/reset"))
        add(Item(f"delta{l}", "i64", (H[l],), "ram", "scratch", note="Q.DELTA_F"))
        if l >= 1:
            add(Item(f"vpre_t{l}", "i32", (K, H[l]), "ram", "scratch"))
            add(Item(f"delta_t{l}", "i64", (K, H[l]), "ram", "scratch"))
    km = max(K, O)
    for name, dt, n, note in shared_scratch(O, K, km, wmax, hmax, rows_max, cols_max):
        add(Item(name, dt, (n,), "ram", "scratch", note=note))
    # tables
    add(Item("exp2_lut", "i32", (len(P.EXP2_LUT),), "flash", "tables", False, P.EXP2_LUT, "2^(-i/256) Q2.30"))
    if tab is not None:
        add(Item("tstream", "u8", tab.bits.shape, "flash", "tables", False, tab.bits,
                 "layer-0 class target spikes, 1 bit each"))
        add(Item("tstream_off", "u32", (K,), "flash", "tables", False, tab.off, "first frame of each class"))
        add(Item("tstream_pre", "u16", (K,), "flash", "tables", False, tab.pre,
                 "frames before the cycle (Q = 0: frames stored)"))
        add(Item("tstream_per", "u16", (K,), "flash", "tables", False, tab.per, "frames of the cycle, 0: none"))
        if len(tab.v_resume):
            add(Item("tstream_v", "i32", tab.v_resume.shape, "flash", "tables", False, tab.v_resume,
                     "membrane after the stored frames of each row that does not repeat"))
    dims = {"K": K, "width_max": wmax, "hidden_max": hmax, "rows_max": rows_max, "cols_max": cols_max,
            "sm_max": km}
    lay = Layout(qm, targets, items, dims)
    validate_layout(lay)
    return lay


def _frozen_layout(qm: QModel, targets: str) -> Layout:
    """device_layout of a frozen-hidden model: readout in RAM, hidden weights in flash, no target set."""
    c = qm.cfg
    L, H, O, N0 = c.layers, list(c.hidden), c.n_out, c.n_in
    out = qm.readout_name
    items: list[Item] = []
    add = items.append
    add(Item(out, "w", qm.weights[out].shape, "ram", "trainable weights", True))
    for n in frozen_hidden_names(qm):
        add(Item(n, "wh", qm.weights[n].shape, "flash", "frozen weights", True, qm.weights[n]))
    for l in row_shift_layers(qm):
        add(Item(f"sh_x_row{l}", "i8", (H[l],), "flash", "frozen weights", False, row_shift_table(qm, l),
                 f"row scales: each neuron's shift of W{l} x to Q.FV"))
    for l in range(L):
        add(Item(f"v{l}", "i32", (H[l],), "ram", "data state", True))
        add(Item(f"s{l}", "i8", (H[l],), "ram", "data state", True))
        add(Item(f"tr{l}", "i16", (H[l],), "ram", "data state", True))
    add(Item("u", "i32", (O,), "ram", "data state", True, note="readout"))
    add(Item("steps", "u32", (1,), "ram", "data state", True, note="steps since the reset"))
    add(Item("rng", "u32", (1,), "ram", "optimizer", True, note="xorshift32 state"))
    add(Item("opt_steps", "u32", (1,), "ram", "optimizer", True))
    add(Item("opt_cfg", "i32", (len(OPT_CFG_FIELDS),), "ram", "optimizer", True, note=", ".join(OPT_CFG_FIELDS)))
    rows, cols = qm.weights[out].shape
    add(Item(f"rr_{out}", "i64", (rows,), "ram", "optimizer", True, note="row mean-square EMA"))
    add(Item(f"cc_{out}", "i64", (cols,), "ram", "optimizer", True, note="column mean-square EMA"))
    add(Item(f"{out}_init", "w", qm.weights[out].shape, "flash", "initial weights", False, qm.weights[out]))
    wmax, hmax = max([N0, *H, O]), max(H)
    for name, dt, n, note in frozen_scratch(O, wmax, hmax, rows, cols):
        add(Item(name, dt, (n,), "ram", "scratch", note=note))
    add(Item("exp2_lut", "i32", (len(P.EXP2_LUT),), "flash", "tables", False, P.EXP2_LUT, "2^(-i/256) Q2.30"))
    dims = {"K": 0, "width_max": wmax, "hidden_max": hmax, "rows_max": rows, "cols_max": cols, "sm_max": O}
    lay = Layout(qm, targets, items, dims)
    validate_layout(lay)
    return lay


def row_shift_layers(qm: QModel) -> list[int]:
    """The hidden layers whose input weights have one scale per row (a table of shifts in flash each)."""
    return [l for l in range(qm.cfg.layers) if f"W{l}" in qm.fw_rows]


def row_shift_table(qm: QModel, l: int) -> np.ndarray:
    """Layer ``l``'s per-neuron input shifts (QModel.in_shifts) as the int8 the C descriptor holds."""
    sh = qm.in_shifts(l)
    if sh.min() <= -64 or sh.max() >= 64:
        raise EdgetpError(f"layer {l}: a row shift of W{l} x is out of range ({sh.min()}..{sh.max()})")
    return sh.astype(np.int8)


def frozen_scratch(O, wmax, hmax, rows, cols) -> list:
    """shared_scratch without the target set's vectors (dz, ysoft, onehot): what the readout's
    step and update need."""
    skip = ("dz", "ysoft", "onehot")
    return [r for r in shared_scratch(O, 0, O, wmax, hmax, rows, cols) if r[0] not in skip]


TSTREAM_MAX_FRAMES = 1024     # a class row's stream that repeats within this many steps is stored as its cycle
# A row that does not repeat is stored for its first TSTREAM_PREFIX_FRAMES steps, and the device runs it
# from the membrane after them: at least one KWS utterance (edgetp.audio.frontend.N_FRAMES = 101 frames,
# 1 s; samples are trained from the reset), plus 27 frames of margin for longer samples.
TSTREAM_PREFIX_FRAMES = 128
_TSTREAM_CACHE: dict = {}


@dataclass
class TargetStream:
    """Layer 0's class target stream in flash (:func:`target_stream_table`), row k = class k:
    ``bits`` (frames, ceil(H/8)) uint8, the spikes of row k's frames from ``off[k]`` on, and per row
    ``pre`` (P) and ``per`` (Q); Q > 0: P + Q frames, then the cycle; Q = 0 (the row does not repeat):
    P = TSTREAM_PREFIX_FRAMES frames, and ``v_resume`` (R, H) int32 holds the membrane after them of
    each such row, in row order (R rows: none when every row repeats)."""

    bits: np.ndarray
    off: np.ndarray
    pre: np.ndarray
    per: np.ndarray
    v_resume: np.ndarray

    @property
    def resumed(self) -> np.ndarray:
        """Rows that do not repeat (resume on the device after their stored frames), in order."""
        return np.flatnonzero(self.per == 0)


def target_stream_table(qm: QModel, targets: str) -> TargetStream | None:
    """The first hidden layer's class target stream as a constant (docs/fixed-point.md, 8).

    With class targets, row k of layer 0's target stream has the constant input one-hot(k) and
    frozen weights (S, S_rec): from the reset it is a fixed sequence of states. It is run here with
    the reference's own ``network_q._layer``; as soon as row k's state (membrane and spikes) before
    step tau equals its state before an earlier step tau0, every later step repeats with period
    tau - tau0 (the step is a function of that state alone). So the spikes of step tau are those of
    frame tau (tau < P + Q) or P + (tau - P) mod Q, with P = tau0 and Q = tau - tau0, exactly.
    A row that does not repeat within TSTREAM_MAX_FRAMES keeps its first P = TSTREAM_PREFIX_FRAMES
    frames (Q = 0) and its state after them: the membrane (``v_resume``) and the spikes (frame P - 1);
    the device runs it from there on, step for step the reference's sequence. None for batch targets."""
    if targets != "classes":
        return None
    from edgetp.fixed.network_q import _layer
    w = qm.weights
    F = TSTREAM_PREFIX_FRAMES
    # bytes alone collide: S of shape (H, K) and of (K, H), or int8 and int16 of equal size, hold the same bytes
    arrays = [w["S"]] + ([w["S_rec"]] if qm.cfg.recurrent else [])
    key = (*((a.shape, a.dtype.str, a.tobytes()) for a in arrays), qm.in_shift(0, True),
           qm.rec_shift(0, True) if qm.cfg.recurrent else 0, qm.alpha_q, qm.vth_q, qm.hard, qm.cfg.recurrent,
           TSTREAM_MAX_FRAMES, F)
    if key in _TSTREAM_CACHE:
        return _TSTREAM_CACHE[key]
    K, H = qm.cfg.n_out, qm.cfg.hidden[0]
    v, s = np.zeros((K, H), np.int32), np.zeros((K, H), np.int8)
    eye = np.eye(K, dtype=np.int8)
    seen: list[dict] = [{} for _ in range(K)]
    cyc: list = [None] * K
    frames, v_at_f = [], None
    for t in range(TSTREAM_MAX_FRAMES + 1):
        if t == F:
            v_at_f = v.copy()
        for k in range(K):
            if cyc[k] is None:
                st = v[k].tobytes() + s[k].tobytes()
                if st in seen[k]:
                    cyc[k] = (seen[k][st], t - seen[k][st])
                else:
                    seen[k][st] = t
        if all(c is not None for c in cyc):
            break
        v, s, _ = _layer(qm, 0, v, s, eye, True)
        frames.append(s.copy())
    cyc = [c if c is not None else (F, 0) for c in cyc]
    rows, off, n = [], [], 0
    for k, (p, q) in enumerate(cyc):
        off.append(n)
        rows += [np.packbits(frames[t][k].astype(np.uint8), bitorder="little") for t in range(p + q)]
        n += p + q
    resumed = [k for k, c in enumerate(cyc) if c[1] == 0]
    v_resume = v_at_f[resumed] if resumed else np.zeros((0, H), np.int32)
    out = TargetStream(np.array(rows, dtype=np.uint8).reshape(n, (H + 7) // 8), np.array(off, dtype=np.uint32),
                       np.array([c[0] for c in cyc], dtype=np.uint16), np.array([c[1] for c in cyc], dtype=np.uint16),
                       np.ascontiguousarray(v_resume, dtype=np.int32))
    _TSTREAM_CACHE[key] = out
    return out


def resumed_membranes(tab: TargetStream, vt0: np.ndarray, tt: int) -> np.ndarray:
    """The device's ``vt0_resume`` (R, H) given the reference's layer-0 target membranes ``vt0``
    (K, H) after ``tt`` training steps since the reset: zero until the step that reads a resumed
    row's last stored frame loads its membrane (tt >= P), the reference's from then on."""
    rows = tab.resumed
    live = (tt >= tab.pre[rows].astype(np.int64))[:, None]
    return np.where(live, vt0[rows], 0).astype(np.int32)


def shared_scratch(O, K, km, wmax, hmax, rows_max, cols_max) -> list:
    """The step's scratch vectors shared by all layers (etp_net_t's fields of the same names)."""
    return [("err", "i32", O, "readout error Q0.15"), ("dz", "i32", K, "contrastive dZ Q0.15"),
            ("ysoft", "i32", K, "soft targets Q0.15"), ("sm_in", "i64", km, "softmax input"),
            ("sm_out", "i64", km, "softmax output"), ("onehot", "i8", O, "target-stream input"),
            ("nz_idx_a", "u16", wmax, "nonzero inputs"), ("nz_val_a", "i16", wmax, ""),
            ("nz_idx_b", "u16", hmax, "nonzero recurrent inputs"), ("nz_val_b", "i16", hmax, ""),
            ("dq", "i32", max(rows_max, K + 1), "gradient row factors"), ("xq", "i32", cols_max, "column factors"),
            ("qrow", "i32", cols_max, "one row of q"), ("rowsq", "i64", rows_max, "row sums of q^2"),
            ("colsq", "i64", cols_max, "column sums of q^2"), ("mcol", "i64", cols_max, "Q.32 column multipliers"),
            ("row_m", "i32", rows_max, "row multipliers"), ("row_s", "i32", rows_max, ""),
            ("col_m", "i32", cols_max, "column multipliers"), ("col_s", "i32", cols_max, "")]


def check_identifier(name: str, what: str = "identifier") -> str:
    """A valid, non-reserved C99 identifier (also not a Python keyword), or EdgetpError."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise EdgetpError(f"invalid C {what} {name!r}: use letters, digits and '_', not starting with a digit")
    if name in C_KEYWORDS or keyword.iskeyword(name):
        raise EdgetpError(f"invalid C {what} {name!r}: a reserved word")
    if name.startswith("__") or (name[0] == "_" and name[1:2].isupper()):
        raise EdgetpError(f"invalid C {what} {name!r}: names starting with '__' or '_' + capital are reserved")
    if len(name) > 63:
        raise EdgetpError(f"invalid C {what} {name!r}: longer than 63 characters (C99's portable limit)")
    return name


def validate_layout(lay: Layout) -> None:
    """Every array name is a valid identifier, unique, with a known type and a sane size."""
    seen = set()
    for it in lay.items:
        check_identifier(it.cname, "array name")
        if it.name in seen:
            raise EdgetpError(f"two device arrays are named {it.name!r}")
        seen.add(it.name)
        if it.dtype not in DTYPES and it.dtype not in ("w", "wh"):
            raise EdgetpError(f"array {it.name}: unknown dtype {it.dtype!r}")
        if it.section not in ("ram", "flash"):
            raise EdgetpError(f"array {it.name}: unknown section {it.section!r}")
        if it.count < 1 or it.count >= 1 << 31:
            raise EdgetpError(f"array {it.name}: {it.count} elements is out of range")
    c = lay.qm.cfg
    if max([c.n_in, *c.hidden, c.n_out]) > 0xFFFF:
        raise EdgetpError("layer widths above 65535 are not supported by the C runtime (uint16 indices)")
