"""The contract between the integer reference and its C twin: every C-visible name, code,
index, limit and shift that both sides use, declared once.

Nothing here computes; it sits at the bottom of the stack (imports NumPy and the float reference's config only) so that
``edgetp.fixed`` (the reference), ``firmware_gen`` (the generator) and ``deploy`` read the
same values. ``python -m firmware_gen.gen_contract`` writes them into
``firmware_gen/runtime/etp_contract.h`` (stamped; ``tests/test_fixed_contract.py`` fails
when the committed header is stale), which the C runtime includes: the C names every
index (``opt_cfg[ETP_CFG_LR_E]``) and checks every range against the same bounds.
"""

from __future__ import annotations

import numpy as np

from edgetp.tp.config import TARGETS

# ---- optimizer kinds: ETP_OPT_<KIND> = its code, on the wire and in opt_cfg (a code is never reused) ----
OPT_CODES = {"sgd": 1, "rownorm": 2, "colnorm": 3}
OPT_KINDS = tuple(OPT_CODES)
# kinds that are gone, and why: code 0 was "factored"; a model or recipe that names one is refused with this
REMOVED_KINDS = {
    "factored": "the factored rule (code 0, an integer Adafactor) was removed: at batch 1 its hidden "
    "layers drift (docs/fixed-point.md, 6.3), colnorm replaced it; choose optimizer colnorm, "
    "rownorm or sgd"
}
# rms_scales' mode of each normalised kind (ETP_MODE_<KIND>); sgd has none
RMS_MODES = {"rownorm": 1, "colnorm": 2}

# ---- the optimizer settings a device starts with (etp_init) unless its export says otherwise ----
DEVICE_OPTIMIZER = "colnorm"
DEVICE_CLIP = -1  # no move limit
DEVICE_LR_MIN = 0.0  # etp_set_lr's floor: any rate down to 0

# ---- the opt_cfg tensor: its fields (ETP_CFG_<FIELD> = index) and their ranges ----
OPT_CFG_FIELDS = ("kind", "lr_m", "lr_e", "beta_shift", "train_all", "clip")
OPT_CFG_RANGES = {  # inclusive (ETP_CFG_<FIELD>_MIN / _MAX)
    "kind": (min(OPT_CODES.values()), max(OPT_CODES.values())),
    "lr_m": (0, 255),  # lr ~= lr_m 2^-lr_e, 8 significant bits (update_q.lr_code)
    "lr_e": (-64, 127),
    "beta_shift": (0, 62),  # EMA decay 2^-beta_shift
    "train_all": (0, 1),  # 1: every layer learns, 0: the readout only
    "clip": (-1, 62),  # move limit 2^clip lr per weight; -1: none
}

# ---- target sets (ETP_TARGETS_<KIND> = index): the float reference's one definition ----
TARGET_KINDS = TARGETS

# ---- dtype codes of the tensor table (etp_tensor_t.dtype): name -> (code, C type, NumPy type) ----
DTYPES = {
    "i8": (0, "int8_t", np.int8),
    "u8": (1, "uint8_t", np.uint8),
    "i16": (2, "int16_t", np.int16),
    "u16": (3, "uint16_t", np.uint16),
    "i32": (4, "int32_t", np.int32),
    "u32": (5, "uint32_t", np.uint32),
    "i64": (6, "int64_t", np.int64),
}

# ---- the update (edgetp/fixed/update_q.py; docs/fixed-point.md, section 5) ----
STAT_F = 48  # row/column mean-square EMAs: int64 Q.48 (their square roots Q.24)
STAT_MAX = 1 << 62  # ... saturating here (RMS 128)
P_LIMIT = 1 << 61  # bound of the move limit (Q.16 and Q.32 weight LSB)
DQ_BITS = 11  # a gradient's row factors are rounded to this many bits (quant_exps)
XQ_BITS = 10  # ... its column factors to this many, less the bits of the term count
Q_LIMIT = 1 << (DQ_BITS + XQ_BITS + 1)  # every element of q is below this (proof: docs/fixed-point.md 5)
M_MAX = (1 << 40) - 1  # a Q.32 move multiplier saturates here: Q_LIMIT * M_MAX < 2^62
DIM_MAX = 1 << 16  # rows and columns of a tensor (uint16 on the device): sums of q^2 < 2^60


def opt_cfg_check(values) -> str | None:
    """None if the opt_cfg ``values`` (in OPT_CFG_FIELDS order) are all within OPT_CFG_RANGES, else
    the first field out of range, as "<field> = <value> (not in lo..hi)"."""
    for name, v in zip(OPT_CFG_FIELDS, values):
        lo, hi = OPT_CFG_RANGES[name]
        if not lo <= int(v) <= hi:
            return f"{name} = {int(v)} (not in {lo}..{hi})"
    return None
