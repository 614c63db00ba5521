"""Host-in-the-loop on an endless stream (issue 32): ``edgetp hil --stream LONG.wav``.

The device hears raw 16 kHz PCM over STREAM commands (at most STREAM_CHUNK samples each) and, for every frame its
stream frontend finishes, runs the model's input, the readout cleared, one inference step and the keyword
detector (deploy/firmware/etp_listen.c). The same PCM runs through the integer reference ``StreamQ``
(edgetp/stream/reference_q.py) in lockstep, and **every frame** is compared: the CRC-32 of the network's input
(the frontend), of the readout increments (the network), of the detector's scalars and window sums, and the
detector's report. The device's counter gives each frame's cost: the hop's frontend work, Δ and input scaling,
the inference step and the detector step (instructions under QEMU -icount).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from deploy import protocol as P
from deploy.frame_costs import percentile_rank
from edgetp.audio.frontend_q import HOP
from edgetp.errors import EdgetpError


def det_crc(st) -> int:
    """CRC-32 of the detector state's t, pos, hold, latch and window sums (int32 LE), as etp_listen.c makes it."""
    head = np.array([st.t, st.pos, st.hold, st.latch], np.int64).astype("<i4").tobytes()
    return zlib.crc32(np.asarray(st.sums, np.int64).astype("<i4").tobytes(), zlib.crc32(head))


def expected(fr, xbits: int) -> dict:
    """The STREAM_FRAME fields (but the costs) the reference frame ``fr`` (a FrameQ) implies."""
    x = np.asarray(fr.x, np.int64).astype("<i1" if xbits == 8 else "<i2")
    return {
        "x_crc": zlib.crc32(x.tobytes()),
        "d_crc": zlib.crc32(np.asarray(fr.d, np.int64).astype("<i4").tobytes()),
        "det_crc": det_crc(fr.det),
        "fired": int(fr.report is not None),
        "cls": fr.report[1] if fr.report is not None else -1,
        "margin": fr.report[2] if fr.report is not None else 0,
    }


WHAT = {"x_crc": "the network's input (frontend)", "d_crc": "the readout increments (network)"}


@dataclass
class StreamResult:
    frames: int = 0
    mismatches: int = 0  # frames with any difference
    first_mismatch: str | None = None
    reports: list = field(default_factory=list)  # the device's (frame, class, margin)
    ref_reports: list = field(default_factory=list)
    slots: list = field(default_factory=list)  # per hop: the hop's frontend + its frames' work (counter units)
    fe: list = field(default_factory=list)  # per frame: Δ, ΔΔ and the input scaling
    net: list = field(default_factory=list)  # per frame: the inference step
    det: list = field(default_factory=list)  # per frame: the detector step
    hop: list = field(default_factory=list)  # per completed hop: the frontend's frame (window to log-mel, L)


def run_stream(dev, stream, pcm: np.ndarray, progress=None, every: int = 6000) -> StreamResult:
    """``pcm`` (int16, whole hops) through the device's STREAM and through ``stream`` (a fresh StreamQ) at once;
    every frame compared. ``progress(msg)`` every ``every`` frames."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 1 or pcm.size % HOP or pcm.size < 8 * HOP:
        raise EdgetpError(f"a stream is int16 samples in whole hops of {HOP}, at least 8 hops; got {pcm.size}")
    res, ref, sent = StreamResult(), [], 0
    xbits = stream.norm.xbits

    def take(recs, hop_cost):
        if hop_cost:
            res.hop.append(hop_cost)
        if hop_cost or recs:
            res.slots.append(hop_cost + sum(r["fe"] + r["net"] + r["det"] for r in recs))
        for r in recs:
            if not ref:
                raise EdgetpError(f"the device finished frame {res.frames}, which the reference has not")
            fr = ref.pop(0)
            want = expected(fr, xbits)
            bad = [k for k, v in want.items() if int(r[k]) != int(v)]
            if bad:
                res.mismatches += 1
                if res.first_mismatch is None:
                    k = bad[0]
                    res.first_mismatch = (
                        f"frame {res.frames}: {WHAT.get(k, 'the detector (' + k + ')')} differs: "
                        f"{r[k]} on the device, {want[k]} in StreamQ"
                    )
            if r["fired"]:
                res.reports.append((res.frames, int(r["cls"]), int(r["margin"])))
            if fr.report is not None:
                res.ref_reports.append(fr.report)
            res.fe.append(r["fe"])
            res.net.append(r["net"])
            res.det.append(r["det"])
            res.frames += 1
            if progress and res.frames % every == 0:
                progress(f"{res.frames} frames ({res.frames / 100:.0f} s), {res.mismatches} mismatches")

    while sent < pcm.size:
        part = pcm[sent : sent + P.STREAM_CHUNK]
        before, sent = sent, sent + part.size
        end = sent == pcm.size
        info, recs = dev.stream(part, start=before == 0, end=end)
        for k in range(before // HOP, sent // HOP):  # the hops this chunk completed, in the reference
            ref += stream.hop(pcm[HOP * k : HOP * (k + 1)])
        if end:
            ref += stream.flush()
        take(recs, info["hop_cost"])
        while info["more"]:
            info, recs = dev.stream(np.zeros(0, np.int16), end=end)
            take(recs, info["hop_cost"])
    if ref:
        raise EdgetpError(f"the reference finished {len(ref)} frames more than the device")
    return res


def stats(values, res: int = 1) -> dict:
    a = np.asarray(values, np.float64) * res
    if not a.size:
        return {}
    return {"mean": float(a.mean()), "p99.9": percentile_rank(a, 99.9), "max": float(a.max())}


def summary(r: StreamResult, counter_res: int = 1, labels=None, readout_bits: int = 0) -> dict:
    """The JSON record of a run: frames, mismatches, detections (margins in readout units: the device's
    / 2^readout_bits), the cost per frame and its parts."""
    name = (lambda k: labels[k]) if labels is not None else (lambda k: int(k))
    unit = float(1 << readout_bits)
    per_frame = np.asarray(r.fe, np.float64) + np.asarray(r.net) + np.asarray(r.det)
    return {
        "frames": r.frames,
        "mismatches": r.mismatches,
        "first_mismatch": r.first_mismatch,
        "detections": [
            {"time_s": round(f * HOP / 16000, 2), "word": name(k), "margin": round(m / unit, 4)}
            for f, k, m in r.reports
        ],
        "reports_equal_reference": r.reports == [tuple(x) for x in r.ref_reports],
        "cost_per_hop": stats(r.slots, counter_res),  # what a 10 ms slot must hold: the hop and its frames
        "cost_per_frame": stats(per_frame, counter_res),  # without the hop's frontend frame
        "frontend_hop": stats(r.hop, counter_res),
        "frontend_delta_input": stats(r.fe, counter_res),
        "network_step": stats(r.net, counter_res),
        "detector_step": stats(r.det, counter_res),
    }


def stream_detector(model, qm):
    """The integer detector a device listens with: the model's recorded threshold (recipe["detect"]), else the
    default, with the default window and refractory time (``edgetp detect``'s defaults)."""
    from edgetp.stream.detector import DEFAULT_THRESHOLD, DetectorSpec

    thr = (model.recipe.get("detect") or {}).get("threshold", DEFAULT_THRESHOLD)
    spec = DetectorSpec.make(model.labels, thr)
    return spec.quantized(int(qm.fw[qm.readout_name]), qm.weights[qm.readout_name])


def stream_export(model, qm, cfg, out_dir):
    """Write the C of ``qm`` with the stream frontend (``stream_norm_q``) and the detector into ``out_dir``;
    returns (out_dir, norm, detector)."""
    from firmware_gen.generate import render
    from edgetp.stream.reference_q import stream_norm_q

    norm, detq = stream_norm_q(model, qm), stream_detector(model, qm)
    render(qm, cfg, frontend=norm, detector=detq).write(out_dir)
    return out_dir, norm, detq


def hil_stream(args, build_image, say) -> int:
    """``edgetp hil --stream WAV``: build the firmware for ``args.model`` (the recipe's device settings), stream
    the WAV through it and through StreamQ, print and (``--json``) write the figures; exit 1 on a mismatch."""
    import json
    import tempfile
    import time
    from pathlib import Path

    from deploy.host import Device, open_port
    from deploy.targets import builds, start
    from edgetp.audio.pcm import load_pcm16
    from edgetp.model import load_model
    from edgetp.stream.reference_q import StreamQ
    from firmware_gen.options import device_from_args

    if not builds(args.target):
        raise EdgetpError("--stream builds its firmware: --target host or an emulated board")
    t0 = time.perf_counter()
    pcm = load_pcm16(args.stream)
    pcm = pcm[: pcm.size // HOP * HOP]
    model = load_model(args.model)
    qm, cfg, _notes = device_from_args(model, args)
    root = Path(args.build_dir) if args.build_dir else Path(tempfile.mkdtemp(prefix="etp-hil-stream-"))
    cdir, norm, detq = stream_export(model, qm, cfg, root / "model")
    image = build_image(cdir, args, root)
    say(f"built {image.path}; streaming {pcm.size / 16000:.1f} s of {args.stream}")
    with start(args.target, image) as target:
        dev = Device(open_port(target.url, args.baud), timeout=args.timeout or (0.5 if args.target == "host" else 5.0))
        try:
            dev.hello()
            r = run_stream(dev, StreamQ(qm, norm, detq), pcm, progress=say)
            info = dev.info
        finally:
            dev.close()
    out = {
        "target": args.target,
        "board": info.board,
        "model": args.model,
        "wav": Path(args.stream).name,
        "seconds_audio": round(pcm.size / 16000, 2),
        "counter": info.counter_name,
        "frontend": {"decay": norm.running_max_decay, "ahead": norm.running_max_ahead, "log_gain": norm.log_gain},
        **summary(r, info.counter_res, model.labels, int(qm.fw[qm.readout_name])),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    for d in out["detections"]:
        say(f"{d['time_s']:9.2f} s  {d['word']:<8} margin {d['margin']}")
    c = out["cost_per_hop"]
    say(
        f"{out['frames']} frames, {out['mismatches']} mismatches"
        + (f" (first: {out['first_mismatch']})" if out["first_mismatch"] else "")
        + f", {len(out['detections'])} detections; {out['counter']} per 10 ms hop (frontend + step + detector): "
        f"mean {c['mean']:,.0f}, p99.9 {c['p99.9']:,.0f}, max {c['max']:,.0f}"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0 if out["mismatches"] == 0 else 1
