"""Spike statistics of a model's data stream on real features: per frame the spikes |s_t| of each
hidden layer, the spikes that changed |s_t xor s_{t-1}| (what an exact delta recurrent sum would
visit) and the nonzero last-layer traces (the readout update's columns). Integer reference,
inference from a zero state per utterance, the HIL session's support and query features.

    python3 experiments/spike_delta.py --model kws-mcu [--query-limit 40] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from deploy.frame_costs import frame_summary
from edgetp.cli.hil import prepare
from edgetp.fixed.network_q import infer_step_q, init_state_q
from firmware_gen.options import add_device_options


def spike_stats(qm, xs) -> dict:
    S, D, U = [], [], []
    for x in xs:
        st = init_state_q(qm, 1, 0)
        prev = [np.zeros(h, np.int8) for h in qm.cfg.hidden]
        for t in range(x.shape[0]):
            st = infer_step_q(qm, st, np.ascontiguousarray(x[None, t]))
            s = [a[0] for a in st.s]
            S.append(sum(int(a.sum()) for a in s))
            D.append(sum(int((a != p).sum()) for a, p in zip(s, prev)))
            U.append(int((st.tr[-1][0] != 0).sum()))
            prev = [a.copy() for a in s]
    return {
        "utterances": len(xs),
        "spikes": frame_summary(S),
        "changed_spikes": frame_summary(D),
        "nonzero_traces": frame_summary(U),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="kws-mcu")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--speaker", default=None)
    ap.add_argument("--shots", default="1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--query-limit", type=int, default=40)
    ap.add_argument("--json", default=None)
    add_device_options(ap)
    a = ap.parse_args(argv)
    a.allow_seen_speaker, a.epochs, a.support_limit, a.audio = False, None, 0, False
    _model, qm, _cfg, _ep, support, query, speaker, _notes = prepare(a)
    res = {"model": a.model, "speaker": speaker, **spike_stats(qm, np.concatenate([support[0], query[0]]))}
    for k in ("spikes", "changed_spikes", "nonzero_traces"):
        r = res[k]
        print(f"{k:16s} mean {r['mean']:7.2f}  p99.9 {r['p999']:6.0f}  max {r['max']:5.0f}  ({r['n']} frames)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
