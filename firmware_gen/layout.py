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
Its recurrent weights ``R<l>`` are stored transposed (``Item.cols``): a spike of neuron j adds one
contiguous column to the layer's sums instead of one weight gathered from each row; its int8 ``W0`` is
stored as int16 (``Item.wide``, :func:`wide_input`): a word of it is one operand pair of SMLAD.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed import primitives as P
from edgetp.fixed.device import n_targets
from edgetp.fixed.qconfig import QModel

from firmware_gen.tstream import target_stream_table

from edgetp.fixed.contract import DTYPES, OPT_CFG_FIELDS  # noqa: F401  (re-exported: one dtype table)

RAM_GROUPS = ("trainable weights", "data state", "target set", "optimizer", "scratch")
FLASH_GROUPS = ("frozen weights", "initial weights", "tables")
# the shared scratch vectors of the target set's terms: a frozen-hidden device (no target set) has none
TARGET_SET_SCRATCH = ("dz", "ysoft", "onehot")
STORE_GROUPS = ("weight store",)  # flash outside the image: firmware_gen/store.py
# What a device saves to go on learning exactly as before (firmware_gen/store.py): the
# trainable weights and the whole optimizer group (PRNG, step count, settings, statistics).
PERSIST_GROUPS = ("trainable weights", "optimizer")
# A frozen recurrent R<l> (H x H, never written) is stored column-major: column j (the weights from neuron j)
# at j * stride, stride = H rounded up to RCOL_ALIGN elements (zeros after row H - 1), so that a group of
# eight rows of a column is word-aligned (the Cortex-M4's LDRD). The tensor table lists these bytes; the
# host's twin (tensors.state_tensors) lists the same through stored_form.
RCOL_ALIGN = 4
# The C sums int8 columns in packed 16-bit lanes (SXTAB16) and adds them to int32 every
# RCOL_FLUSH spikes: k int8 weights sum to [-128 k, 127 k], inside int16 for k <= 2^15 / 2^7 = 256.
RCOL_FLUSH = (1 << 15) // (1 << 7)
# Scratch on a word boundary: etp_lif_step_q copies features that are not there into nz_val_a before the
# wide W0's LDRD loop (wide_input).
ALIGN4_SCRATCH = frozenset({"nz_val_a"})
TENSOR_ENTRY_BYTES = 16  # sizeof(etp_tensor_t) on a 32-bit target (4 + 1 + 1 + pad 2 + 4 + 4)

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Bool _Complex _Imaginary""".split()
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Item:
    """One array on the device."""

    name: str  # tensor name; the C array is ``etp_<name>``
    dtype: str  # key of DTYPES, or "w" for the model's weight type
    shape: tuple
    section: str  # "ram" or "flash"
    group: str  # memory-plan group
    table: bool = False  # listed in the tensor table
    init: np.ndarray | None = None  # contents (flash arrays)
    note: str = ""
    cols: int = 0  # > 0: a matrix stored transposed, each column padded to this many elements (RCOL_ALIGN)
    wide: bool = False  # int8 values stored as int16 (wide_input): word-aligned rows of weight pairs

    @property
    def align4(self) -> bool:
        """Word-aligned in C (ETP_ALIGN4): the Cortex-M4 kernels read it with LDRD."""
        return bool(self.cols) or self.wide or self.name in ALIGN4_SCRATCH

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
    dims: dict  # sizes the runtime needs (K, widths, ...)

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


def device_trainable(qm: QModel) -> list[str]:
    """The tensors the device trains (RAM, optimizer statistics, etp_params order):
    ``trainable_names``, or the readout alone for a frozen-hidden model."""
    return [qm.readout_name] if qm.frozen_hidden else list(qm.trainable_names)


def frozen_hidden_names(qm: QModel) -> list[str]:
    """The hidden tensors a frozen-hidden device keeps in flash, in ``trainable_names`` order."""
    return [n for n in qm.trainable_names if n != qm.readout_name] if qm.frozen_hidden else []


def device_layout(qm: QModel, targets: str = "classes") -> Layout:
    """Every array of the C twin of ``qm`` (batch 1, the given target set). A frozen-hidden model keeps its hidden
    weights in flash (with their row scales) and has no target set, no hidden-layer learning scratch."""
    c = qm.cfg
    L, H, O, N0, rec = c.layers, list(c.hidden), c.n_out, c.n_in, c.recurrent
    frozen = qm.frozen_hidden
    K = n_targets(qm, targets)
    train = device_trainable(qm)
    tab = None if frozen else target_stream_table(qm, targets)
    items: list[Item] = []
    add = items.append
    for n in train:
        add(Item(n, "w", qm.weights[n].shape, "ram", "trainable weights", True))
    if frozen:
        for n in frozen_hidden_names(qm):
            if n.startswith("R"):
                h = qm.weights[n].shape[0]
                st = r_stride(h)
                pad = f", {st - h} zeros after each column" if st > h else ""
                note = f"transposed: [j][i] = {n}[i][j]{pad}"
                it = Item(n, "wh", (h, st), "flash", "frozen weights", True, note=note, cols=st)
                it.init = stored_form(it, qm.weights[n])
                add(it)
            elif wide_input(qm, n):
                w = qm.weights[n]
                add(Item(n, "i16", w.shape, "flash", "frozen weights", True, w, "int8 values as int16", wide=True))
            else:
                add(Item(n, "wh", qm.weights[n].shape, "flash", "frozen weights", True, qm.weights[n]))
        for l in row_shift_layers(qm):
            add(
                Item(
                    f"sh_x_row{l}",
                    "i8",
                    (H[l],),
                    "flash",
                    "frozen weights",
                    False,
                    row_shift_table(qm, l),
                    f"row scales: each neuron's shift of W{l} x to Q.FV",
                )
            )
    else:
        for n in ["S"] + (["S_rec"] if rec else []):
            add(Item(n, "w", qm.weights[n].shape, "flash", "frozen weights", True, qm.weights[n]))
    for l in range(L):
        add(Item(f"v{l}", "i32", (H[l],), "ram", "data state", True))
        add(Item(f"s{l}", "i8", (H[l],), "ram", "data state", True))
        add(Item(f"tr{l}", "i16", (H[l],), "ram", "data state", True))
    if not frozen:
        for l in range(L):
            if not (l == 0 and tab is not None):  # a tabulated stream keeps no membrane ...
                add(Item(f"vt{l}", "i32", (K, H[l]), "ram", "target set", True))
            elif len(tab.v_resume):  # ... but for the rows that resume on the device
                add(
                    Item(
                        "vt0_resume",
                        "i32",
                        tab.v_resume.shape,
                        "ram",
                        "target set",
                        True,
                        note="membrane of each row that does not repeat, zero before its switch",
                    )
                )
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
    for n in train:
        rows, cols = qm.weights[n].shape
        add(Item(f"rr_{n}", "i64", (rows,), "ram", "optimizer", True, note="row mean-square EMA"))
        add(Item(f"cc_{n}", "i64", (cols,), "ram", "optimizer", True, note="column mean-square EMA"))
    # initial values of the trainable weights (etp_init copies them to RAM)
    for n in train:
        add(Item(f"{n}_init", "w", qm.weights[n].shape, "flash", "initial weights", False, qm.weights[n]))
    # scratch: one step's intermediate values
    wmax, hmax = max([N0, *H, O]), max(H)
    rows_max = max(qm.weights[n].shape[0] for n in train)
    cols_max = max(qm.weights[n].shape[1] for n in train)
    if not frozen:
        for l in range(L):
            if rec:
                add(Item(f"s_prev{l}", "i8", (H[l],), "ram", "scratch", note="spikes of the previous step"))
                if l >= 1:  # only the target terms of layers >= 1 read it
                    add(Item(f"st_prev{l}", "i8", (K, H[l]), "ram", "scratch"))
            add(Item(f"vpre{l}", "i32", (H[l],), "ram", "scratch", note="membrane before spike/reset"))
            add(Item(f"delta{l}", "i64", (H[l],), "ram", "scratch", note="Q.DELTA_F"))
            if l >= 1:
                add(Item(f"vpre_t{l}", "i32", (K, H[l]), "ram", "scratch"))
                add(Item(f"delta_t{l}", "i64", (K, H[l]), "ram", "scratch"))
    km = max(K, O)
    for name, dt, n, note in shared_scratch(O, K, km, wmax, hmax, rows_max, cols_max):
        if not (frozen and name in TARGET_SET_SCRATCH):
            add(Item(name, dt, (n,), "ram", "scratch", note=note))
    # tables
    add(Item("exp2_lut", "i32", (len(P.EXP2_LUT),), "flash", "tables", False, P.EXP2_LUT, "2^(-i/256) Q2.30"))
    if tab is not None:
        add(
            Item(
                "tstream",
                "u8",
                tab.bits.shape,
                "flash",
                "tables",
                False,
                tab.bits,
                "layer-0 class target spikes, 1 bit each",
            )
        )
        add(Item("tstream_off", "u32", (K,), "flash", "tables", False, tab.off, "first frame of each class"))
        add(
            Item(
                "tstream_pre",
                "u16",
                (K,),
                "flash",
                "tables",
                False,
                tab.pre,
                "frames before the cycle (Q = 0: frames stored)",
            )
        )
        add(Item("tstream_per", "u16", (K,), "flash", "tables", False, tab.per, "frames of the cycle, 0: none"))
        if len(tab.v_resume):
            add(
                Item(
                    "tstream_v",
                    "i32",
                    tab.v_resume.shape,
                    "flash",
                    "tables",
                    False,
                    tab.v_resume,
                    "membrane after the stored frames of each row that does not repeat",
                )
            )
    dims = {"K": K, "width_max": wmax, "hidden_max": hmax, "rows_max": rows_max, "cols_max": cols_max, "sm_max": km}
    lay = Layout(qm, targets, items, dims)
    validate_layout(lay)
    return lay


def wide_input(qm: QModel, name: str) -> bool:
    """Whether the frozen int8 input weights ``name`` are stored widened to int16: layer 0's ``W0`` of a
    frozen-hidden int8 build with int16 features. Its rows meet dense features on every frame, the largest
    sum of a step (``H0 x N0`` products); with int16 weights in flash a 32-bit load is one SMLAD operand
    pair, where int8 rows need two SXTB16 per four weights (docs/deploy.md). The values, sums and
    reference are unchanged; flash grows by ``H0 x N0`` bytes."""
    return qm.frozen_hidden and name == "W0" and qm.hbits == 8 and qm.xbits == 16 and qm.cfg.n_in % 2 == 0


def r_stride(h: int) -> int:
    """The column stride of a transposed H x H recurrent matrix: H rounded up to RCOL_ALIGN."""
    return -(-h // RCOL_ALIGN) * RCOL_ALIGN


def stored_form(it: Item, a: np.ndarray) -> np.ndarray:
    """The array ``a`` (logical shape) as the device stores ``it``: transposed and padded when ``it.cols``."""
    if not it.cols:
        return a
    out = np.zeros(it.shape, a.dtype)
    out[:, : a.shape[0]] = a.T
    return out


def row_shift_layers(qm: QModel) -> list[int]:
    """The hidden layers whose input weights have one scale per row (a table of shifts in flash each)."""
    return [l for l in range(qm.cfg.layers) if f"W{l}" in qm.fw_rows]


def row_shift_table(qm: QModel, l: int) -> np.ndarray:
    """Layer ``l``'s per-neuron input shifts (QModel.in_shifts) as the int8 the C descriptor holds."""
    sh = qm.in_shifts(l)
    if sh.min() <= -64 or sh.max() >= 64:
        raise EdgetpError(f"layer {l}: a row shift of W{l} x is out of range ({sh.min()}..{sh.max()})")
    return sh.astype(np.int8)


def shared_scratch(O, K, km, wmax, hmax, rows_max, cols_max) -> list:
    """The step's scratch vectors shared by all layers (etp_net_t's fields of the same names)."""
    return [
        ("err", "i32", O, "readout error Q0.15"),
        ("dz", "i32", K, "contrastive dZ Q0.15"),
        ("ysoft", "i32", K, "soft targets Q0.15"),
        ("sm_in", "i64", km, "softmax input"),
        ("sm_out", "i64", km, "softmax output"),
        ("onehot", "i8", O, "target-stream input"),
        ("nz_idx_a", "u16", wmax, "nonzero inputs"),
        ("nz_val_a", "i16", wmax, ""),
        ("nz_idx_b", "u16", hmax, "nonzero recurrent inputs"),
        ("nz_val_b", "i16", hmax, ""),
        ("dq", "i32", max(rows_max, K + 1), "gradient row factors"),
        ("xq", "i32", cols_max, "column factors"),
        ("qrow", "i32", cols_max, "one row of q"),
        ("rowsq", "i64", rows_max, "row sums of q^2"),
        ("colsq", "i64", cols_max, "column sums of q^2"),
        ("mcol", "i64", cols_max, "Q.32 column multipliers"),
        ("row_m", "i32", rows_max, "row multipliers"),
        ("row_s", "i32", rows_max, ""),
        ("col_m", "i32", cols_max, "column multipliers"),
        ("col_s", "i32", cols_max, ""),
    ]


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
