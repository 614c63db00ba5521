"""How close is the integer frontend to the float pipeline, for a model's log gain?

    python experiments/frontend_q_snr.py OUT.json [--gains 1,1000] [--running-max 2,16] [--models kws-mcu,kws-mcu-64k]
        [--every N] [WAV ... | DIR]

For every recording (default: the 14 of ../shared/audio/real, else tests/data/real) and
every log gain g: the signal-to-error ratio per block (log-mel, Δ, ΔΔ),
``10 log10(Σ ref² / Σ (ref − int)²)``, of ``edgetp.audio.frontend_q.features_q(…, log_gain=g)``
against ``edgetp.kws.data.recompress(frontend.features(…), g)`` (the float pipeline, equal to
librosa within 3e-8). For every model: the same of its int16 input ``x / 2^fx``
(``InputNorm.for_model``: the model's own g and divisors) against its float input
(``edgetp.kws.protocol.model_norm(model).apply``: recompress, then the divisors), and how
many input values saturate. With ``--running-max D,...`` also every g with the causal running maximum
of decay D (``features_q(…, log_gain=g, running_max_decay=D)`` against ``recompress(…, g, D)``). A DIR
argument takes its WAV files (recursively, sorted), ``--every N`` every N-th of them.
Prints a table and writes everything to OUT.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def default_wavs() -> list[Path]:
    for d in (ROOT.parent / "shared" / "audio" / "real", ROOT / "tests" / "data" / "real"):
        wavs = sorted(d.glob("*.wav"))
        if wavs:
            return wavs
    return []


def main(argv=None) -> int:
    from edgetp.audio import frontend as fe
    from edgetp.audio import frontend_q as fq
    from edgetp.audio.metrics import BLOCKS, block_snr
    from edgetp.kws.data import recompress
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model
    from firmware_gen.qmodel import qmodel_for

    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("wavs", nargs="*")
    ap.add_argument("--gains", default="1,1000")
    ap.add_argument("--models", default="kws-mcu,kws-mcu-64k")
    ap.add_argument("--running-max", default="", help="decays D (comma-separated) of the running maximum")
    ap.add_argument("--every", type=int, default=1, help="every N-th recording")
    a = ap.parse_args(argv)
    wavs = [w for x in map(Path, a.wavs) for w in (sorted(x.rglob("*.wav")) if x.is_dir() else [x])]
    wavs = (wavs or default_wavs())[:: max(1, a.every)]
    if not wavs:
        print("ERROR inputs: no WAV files given or found", file=sys.stderr)
        return 2
    pcms = {f"{w.parent.name}/{w.stem}": fq.pcm16(fq.load_pcm16(w)) for w in wavs}
    floats = {k: fe.features(p) for k, p in pcms.items()}
    out = {"recordings": [str(w) for w in wavs], "features": {}, "model_inputs": {}}
    blocks = list(BLOCKS)
    decays = [None] + [int(d) for d in a.running_max.split(",") if d]
    for g in (float(x) for x in a.gains.split(",")):
        for d in decays:
            rows = {
                k: block_snr(recompress(floats[k], g, d), fq.features_q(p, log_gain=g, running_max_decay=d))
                for k, p in pcms.items()
            }
            out["features"][f"{g:g}" + (f" running-max {d}" if d else "")] = {
                "l_frac": fq.l_frac(g),
                "log_offset": fq.log_offset(g),
                "running_max_decay": d,
                "snr_db": rows,
                "min_db": {b: min(r[b] for r in rows.values()) for b in blocks},
            }
    for name in filter(None, a.models.split(",")):
        model = load_model(name)
        qm, _ = qmodel_for(model)
        norm = fq.InputNorm.for_model(model, qm)
        mi = model_norm(model)
        lo, hi = norm.limits
        rows, sat = {}, 0
        for k, p in pcms.items():
            x = fq.utterance_q(p, norm).x
            sat += int(np.sum((x == lo) | (x == hi)))
            rows[k] = block_snr(mi.apply(floats[k][None])[0], x / 2.0**qm.fx)
        out["model_inputs"][name] = {
            "log_gain": norm.log_gain,
            "fx": qm.fx,
            "xbits": qm.xbits,
            "saturated": sat,
            "values": len(pcms) * fq.N_FRAMES * fq.N_FEATURES,
            "snr_db": rows,
            "min_db": {b: min(r[b] for r in rows.values()) for b in blocks},
        }
    out["command"] = "python experiments/frontend_q_snr.py " + " ".join(argv if argv is not None else sys.argv[1:])
    Path(a.out).write_text(json.dumps(out, indent=1))
    for g, r in out["features"].items():
        print(f"features, log gain {g} (L Q.{r['l_frac']}, offset {r['log_offset']}): SNR dB per block")
        for k, s in list(r["snr_db"].items())[:20]:
            print(f"  {k:24s} " + "  ".join(f"{b} {s[b]:5.1f}" for b in blocks))
        if len(r["snr_db"]) > 20:
            print(f"  ... ({len(r['snr_db'])} recordings)")
        print(f"  {'minimum':24s} " + "  ".join(f"{b} {r['min_db'][b]:5.1f}" for b in blocks))
    for n, r in out["model_inputs"].items():
        print(
            f"model input of {n} (log gain {r['log_gain']:g}, int{r['xbits']} Q.{r['fx']}): minimum SNR dB "
            + "  ".join(f"{b} {r['min_db'][b]:5.1f}" for b in blocks)
            + f"; {r['saturated']} of {r['values']} values saturate"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
