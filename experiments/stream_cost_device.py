"""What listening costs on the device (issue 32: "a thirty-minute stream costs no more than 10 % extra per frame on
the device over plain inference"): `hil --stream` against `hil --audio`'s plain inference, same model, same process.

An experiment, not part of the installed package (run from the repository root; long runs are commands, not tests):

    python3 ../shared/tools/real_gsc_layout.py ../shared/audio/gsc-real-dev DIR
    PYTHONPATH=. python3 experiments/stream_cost_device.py --data-root DIR --noise ../shared/audio/gsc-real-noise \
        --minutes 30 --target qemu --out experiments/results/stream/hil-stream-qemu-30min.json

The stream is `detect --eval`'s (edgetp/stream/build.py: the corpus' testing split, the real development clips at
random times, real noise at --snr dB), written as a 16 kHz WAV (--save-wav) and read back as `hil --stream` reads
it. The model is --model (default kws-mcu) quantized as `hil` quantizes it (its recipe: the `--fixed` integer
model). Two firmwares of it: the stream one (the stream frontend with the running maximum read ahead, the detector;
STREAM, every frame compared with StreamQ) and the plain one (`hil --audio`'s: the one-utterance frontend, AUDIO_PCM
then AUDIO_RUN inferring, on --clips one-second pieces of the same stream). Per frame, in the counter's unit
(instructions under QEMU -icount):

- stream: the hop's frontend frame (window to log-mel, the running maximum, L of frame t - A) + delta and input
  scaling + the inference step (the readout cleared first) + the detector step;
- plain: the hop's frontend frame (window to log-mel) + the features of a frame (L on demand, delta, scaling) + the
  inference step + the utterance's finish (its padded frames, maximum, L) / 101.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from deploy.build import build
from deploy.hil_audio import send_audio
from deploy.hil_stream import run_stream, stream_export, summary
from deploy.host import Device, open_port
from deploy.reference import export_c
from deploy.targets import start
from edgetp.audio.frontend_q import HOP, InputNorm
from edgetp.audio.pcm import load_pcm16
from edgetp.model import load_model
from edgetp.stream.reference_q import StreamQ
from firmware_gen.options import device_from_args


def plain_costs(dev, pcm: np.ndarray, clips: int, seed: int) -> dict:
    """AUDIO_PCM + AUDIO_RUN (inferring) on ``clips`` one-second pieces of ``pcm`` at seeded offsets: per frame."""
    rng = np.random.default_rng(seed)
    hop, feat, net, fin = [], [], [], []
    for off in np.sort(rng.integers(0, pcm.size // 16000 - 1, clips)) * 16000:
        dev.reset_state()
        r = send_audio(dev, pcm[off : off + 16000], None)
        hop += [c for c, done in r["chunks"] if done]
        feat.append(r["fe_frames"] / 101)
        net.append(r["net_sum"] / 101)
        fin.append(r["fe_finish"] / 101)
    res = dev.info.counter_res
    parts = {
        "frontend_hop": float(np.mean(hop)) * res,
        "features_per_frame": float(np.mean(feat)) * res,
        "network_step": float(np.mean(net)) * res,
        "finish_per_frame": float(np.mean(fin)) * res,
    }
    return {"clips": clips, "frames": 101 * clips, **parts, "per_frame_mean": sum(parts.values())}


@contextmanager
def device(target, image):
    """A Device in session with ``image`` started on ``target``."""
    with start(target, image) as t:
        dev = Device(open_port(t.url), timeout=5.0 if target != "host" else 0.5)
        try:
            dev.hello()
            yield dev
        finally:
            dev.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="kws-mcu")
    ap.add_argument("--data-root", help="GSC-layout corpus (the stream's clips: its testing split)")
    ap.add_argument("--noise", help="folder of noise WAVs (detect --eval --noise)")
    ap.add_argument("--snr", type=float, default=10.0)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wav", help="stream this WAV instead of building one")
    ap.add_argument("--save-wav", help="keep the built stream here")
    ap.add_argument("--clips", type=int, default=30, help="one-second pieces for the plain inference")
    ap.add_argument("--target", default="qemu")
    ap.add_argument("--out", help="write the figures as JSON here")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    model = load_model(a.model)
    qm, cfg, _notes = device_from_args(model, SimpleNamespace())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = a.wav
        if wav is None:
            from edgetp.audio.wav import write_wav16
            from edgetp.kws.data import corpus_for
            from edgetp.stream.build import build_stream, load_noise

            corpus = corpus_for(model, a.data_root)
            noise = load_noise(a.noise) if a.noise else None
            wave, events = build_stream(corpus, corpus.select(split="testing"), a.minutes, a.seed, noise, a.snr)
            wav = a.save_wav or str(tmp / "stream.wav")
            write_wav16(wav, wave)
            print(f"stream: {len(wave) / 16000 / 60:.1f} min, {len(events)} clips", flush=True)
        pcm = load_pcm16(wav)
        pcm = pcm[: pcm.size // HOP * HOP]
        cdir, norm, detq = stream_export(model, qm, cfg, tmp / "stream")
        s_img = build(cdir, a.target, out_root=tmp / "fw-stream")
        p_img = build(
            export_c(qm, tmp / "plain", cfg, frontend=InputNorm.for_model(model, qm)),
            a.target,
            out_root=tmp / "fw-plain",
        )
        with device(a.target, p_img) as dev:
            plain = plain_costs(dev, pcm, a.clips, a.seed)
        print(f"plain inference: {plain['per_frame_mean']:,.0f} per frame", flush=True)
        with device(a.target, s_img) as dev:
            r = run_stream(dev, StreamQ(qm, norm, detq), pcm, progress=lambda m: print(m, flush=True))
            info = dev.info
    s = summary(r, info.counter_res, model.labels, int(qm.fw[qm.readout_name]))
    hop = s["frontend_hop"]["mean"] * len(r.hop) / max(r.frames, 1)
    per_frame = s["cost_per_frame"]["mean"] + hop
    out = {
        "command": "PYTHONPATH=. python3 experiments/stream_cost_device.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(a).items()
            if v is not None and k not in ("out", "save_wav", "data_root", "noise", "wav")
        )
        + (" --data-root DIR --noise ../shared/audio/gsc-real-noise" if a.noise else ""),
        "model": a.model,
        "net": qm.cfg.net_string(),
        "target": a.target,
        "board": info.board,
        "counter": info.counter_name,
        "minutes": round(pcm.size / 16000 / 60, 2),
        "frontend": {"decay": norm.running_max_decay, "ahead": norm.running_max_ahead, "log_gain": norm.log_gain},
        "stream": {**s, "detections": len(s["detections"]), "per_frame_mean": per_frame},
        "plain": plain,
        "extra_per_frame": per_frame / plain["per_frame_mean"] - 1.0,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(
        f"{r.frames} frames, {r.mismatches} mismatches; per frame: stream {per_frame:,.0f}, plain "
        f"{plain['per_frame_mean']:,.0f} {info.counter_name}: {100 * out['extra_per_frame']:+.2f} %",
        flush=True,
    )
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0 if r.mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
