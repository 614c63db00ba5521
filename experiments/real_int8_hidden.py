"""What an int8 hidden layer costs a model on the real choose speakers, per way of scaling it (float emulation).

An experiment, not part of the installed package (run from the repository root):

    python3 experiments/real_int8_hidden.py --data-root DEV --model M.npz --json OUT.json

kws-mcu keeps its hidden layer in flash as int8 with one power-of-two scale per tensor (edgetp.fixed.quantize). Here
the float network's input weights W0 and recurrent weights R are rounded the same way (per tensor), or W0 clipped at a
percentile of |W0| first, or W0 given one power-of-two scale per row (per hidden neuron); the zero-shot top-1 of each
is measured in float, so the figures isolate the weight rounding from the rest of the integer network.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from edgetp.data.gsc import load_corpus
from edgetp.model import load_model

sys.path.insert(0, str(Path(__file__).parent))
from real_zero_shot import score  # noqa: E402


def int8_pow2(w: np.ndarray, clip: float | None = None) -> tuple[np.ndarray, int]:
    """``w`` rounded to int8 with the largest power-of-two scale 2^f that fits max|w| (after clipping)."""
    w = w if clip is None else np.clip(w, -clip, clip)
    f = int(np.floor(np.log2(127.0 / float(np.abs(w).max()))))
    return (np.clip(np.round(w * 2.0**f), -128, 127) / 2.0**f).astype(w.dtype), f


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True, help="a view made by `edgetp data real-dev`")
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    dev = load_corpus(args.data_root)
    idx = dev.select(split="testing")
    out = {
        "what": "zero-shot top-1 on the real choose speakers with int8-rounded hidden weights (float emulation)",
        "models": {},
    }
    for name in args.model:
        m = load_model(name)
        rows = {}

        def run(label, edit):
            p = m.params.copy()
            info = edit(p)
            r = score(dataclasses.replace(m, params=p), dev, idx, False)
            rows[label] = {"top1": r["top1"], "core_top1": r["core_top1"], **info}
            print(
                f"{Path(name).stem} {label}: {r['top1']:.1f} % all, {r['core_top1']:.1f} % core ten {info}", flush=True
            )

        def tensor(p, which):
            info = {}
            for k in which:
                arr = p.W[0] if k == "W0" else p.R[0]
                arr[...], info[f"{k}_frac_bits"] = int8_pow2(arr)
            return info

        def clipped(pct):
            def edit(p):
                c = float(np.percentile(np.abs(p.W[0]), pct))
                p.W[0][...], f = int8_pow2(p.W[0], c)
                return {"clip": round(c, 2), "W0_frac_bits": f}

            return edit

        def per_row(p):
            bits = []
            for i in range(p.W[0].shape[0]):
                p.W[0][i], f = int8_pow2(p.W[0][i])
                bits.append(f)
            return {"W0_frac_bits_min": min(bits), "W0_frac_bits_max": max(bits)}

        run("float", lambda p: {"W0_max": float(np.abs(p.W[0]).max()), "R_max": float(np.abs(p.R[0]).max())})
        run("W0 per tensor", lambda p: tensor(p, ["W0"]))
        run("R per tensor", lambda p: tensor(p, ["R"]))
        run("W0 and R per tensor", lambda p: tensor(p, ["W0", "R"]))
        run("W0 clipped at the 99th percentile", clipped(99.0))
        run("W0 per row", per_row)
        out["models"][Path(name).stem if name.endswith(".npz") else name] = {"hash": m.hash(), "rows": rows}
    Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
