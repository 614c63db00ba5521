"""Which integer model an export runs, and its hash.

``edgetp export --c`` and ``edgetp verify-c --model`` start from a float model file and
quantize it the same way (so what verify-c proves is what export writes): weight and
input widths, input fractional bits ``fx`` and weight headroom come from the options,
else from the model's ``recipe["fixed"]`` entry, else from ``defaults.DEFAULTS``; so do
the frozen-hidden mode (``frozen_hidden``, default off), the hidden tensors' width
``hbits`` (default ``wbits``; another width needs the frozen-hidden mode) and ``row_scales``
(one power-of-two scale per row of the hidden input weights; default off, frozen-hidden only).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.qconfig import WBITS, QModel, from_float

from firmware_gen.defaults import DEFAULTS


# the settings quant_settings resolves (DEFAULTS' keys first, in its order)
QUANT_KEYS = (*DEFAULTS, "hbits", "frozen_hidden", "row_scales")


def quant_settings(model, **given) -> tuple[dict, list[str]]:
    """Resolve wbits, xbits, fx, headroom: given (not None) > model.recipe["fixed"] > DEFAULTS.
    Returns the settings and notes naming where each came from when not given."""
    stored = (getattr(model, "recipe", None) or {}).get("fixed") or {}
    out, notes = {}, []

    def pick(key, default):
        if given.get(key) is not None:
            out[key] = given[key]
        elif key in stored:
            out[key] = stored[key]
            notes.append(f"{key} {stored[key]} from the model's recipe")
        else:
            out[key] = default
            if key == "fx":
                notes.append(
                    f"inputs Q.{default} (default for unit-std features; the model records no fx, pass --fx to choose)"
                )

    for key, default in DEFAULTS.items():
        pick(key, default)
    out["wbits"], out["xbits"], out["fx"] = int(out["wbits"]), int(out["xbits"]), int(out["fx"])
    out["headroom"] = float(out["headroom"])
    if out["wbits"] not in WBITS or out["xbits"] not in WBITS:
        raise EdgetpError(f"weight and input widths must be one of {WBITS}")
    if not 0 <= out["fx"] <= 24 or not out["headroom"] >= 1.0:
        raise EdgetpError(f"fx must be in 0..24 and headroom >= 1, got {out['fx']}, {out['headroom']}")
    pick("frozen_hidden", False)
    pick("hbits", out["wbits"])
    out["frozen_hidden"] = bool(out["frozen_hidden"])
    if out["hbits"] not in WBITS:
        raise EdgetpError(f"hidden weight width must be one of {WBITS}, got {out['hbits']}")
    out["hbits"] = int(out["hbits"])
    if out["hbits"] != out["wbits"] and not out["frozen_hidden"]:
        raise EdgetpError(
            f"hidden weights of {out['hbits']} bits with {out['wbits']}-bit weights need the "
            "frozen-hidden mode (--frozen-hidden: only the readout learns)"
        )
    pick("row_scales", False)
    out["row_scales"] = bool(out["row_scales"])
    if out["row_scales"] and not out["frozen_hidden"]:
        raise EdgetpError(
            "row scales (one scale per row of the hidden weights) need the frozen-hidden mode "
            "(--frozen-hidden: only the readout learns)"
        )
    return out, notes


def qmodel_for(model, **given) -> tuple[QModel, list[str]]:
    """The integer model of float ``model`` (edgetp.model.Model) under the resolved settings."""
    s, notes = quant_settings(model, **given)
    qm = from_float(
        model.cfg,
        model.params,
        s["fx"],
        s["wbits"],
        s["headroom"],
        list(model.labels),
        s["xbits"],
        s["hbits"],
        s["frozen_hidden"],
        s["row_scales"],
    )
    return qm, notes


def qmodel_hash(qm: QModel) -> str:
    """sha256 of everything that defines the integer model: network, widths, formats, weights."""
    meta = {
        "net": qm.cfg.to_dict(),
        "wbits": qm.wbits,
        "xbits": qm.xbits,
        "fx": qm.fx,
        "fw": {k: int(v) for k, v in sorted(qm.fw.items())},
        "labels": list(qm.labels),
    }
    if qm.frozen_hidden:  # another device layout (firmware_gen.layout); absent: as before
        meta.update(frozen_hidden=True, hbits=qm.hbits)
    if qm.row_scales:  # absent without: the hashes of per-tensor models stay as they were
        meta["fw_rows"] = {k: [int(f) for f in v] for k, v in sorted(qm.fw_rows.items())}
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name, a in qm.named_arrays():
        a = np.ascontiguousarray(a)
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def labels_of(qm: QModel) -> list[str]:
    labels = [str(x) for x in qm.labels]
    return labels if len(labels) == qm.cfg.n_out else [str(k) for k in range(qm.cfg.n_out)]
