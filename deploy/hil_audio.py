"""Host-in-the-loop from raw audio: the device runs the integer frontend, then TP.

``edgetp hil ... --audio``: every utterance is sent as 16 kHz int16 PCM (``AUDIO_PCM``
frames of at most ``AUDIO_CHUNK`` samples), then ``AUDIO_RUN`` finishes the utterance on
the device (last frames, maximum, L) and runs its 101 frames through the network, training
with the label or inferring. The reference computes the same frames with
``edgetp.audio.frontend_q`` and runs the integer TP reference on them; the session compares
the state digest after every sample as for feature frames, and in addition the CRC-32 of
the 101 x 120 inputs the device fed its network (a frontend difference is named as such).

Recovery after a device reset replays or restores from the verified inputs with TRAIN
frames (deploy.hil.Session), which is the same computation.
"""

from __future__ import annotations

import numpy as np

from deploy import protocol as P
from deploy.frame_costs import percentile_rank
from deploy.hil import HilError, Session
from edgetp.errors import EdgetpError
from firmware_gen.frontend_verify import input_crc as x_crc
from edgetp.audio import frontend_q as FQ


class AudioFrames(np.ndarray):
    """The model inputs of one utterance (101, 120), carrying the PCM they came from."""

    pcm: np.ndarray | None = None

    def __array_finalize__(self, obj):
        self.pcm = getattr(obj, "pcm", None)


def with_pcm(x: np.ndarray, pcm: np.ndarray) -> AudioFrames:
    a = np.asarray(x).view(AudioFrames)
    a.pcm = np.asarray(pcm, dtype=np.int16)
    return a


def send_audio(dev, pcm: np.ndarray, label: int | None) -> dict:
    """Stream one utterance to the device and run it; returns the AUDIO_RUN fields plus the
    per-chunk frontend costs (``chunks``: (cost, frames completed) per AUDIO_PCM)."""
    pcm = np.asarray(pcm, dtype="<i2")
    chunks = []
    frames = 0
    for k, off in enumerate(range(0, pcm.size, P.AUDIO_CHUNK)):
        part = pcm[off : off + P.AUDIO_CHUNK]
        rsp = dev.request(P.Cmd.AUDIO_PCM, P.pack("REQ_AUDIO_PCM", start=int(k == 0)) + part.tobytes())
        f, _ = P.unpack("RSP_AUDIO_PCM", rsp)
        chunks.append((f["cost"], f["frames"] - frames))
        frames = f["frames"]
    lab = P.AUDIO_NO_LABEL if label is None else int(label)
    f, _ = P.unpack("RSP_AUDIO_RUN", dev.request(P.Cmd.AUDIO_RUN, P.pack("REQ_AUDIO_RUN", label=lab)))
    f["chunks"] = chunks
    return f


class AudioSession(Session):
    """deploy.hil.Session whose samples go to the device as PCM when they carry it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.fe = {"hop": [], "finish": [], "frames": [], "utterances": 0, "x_crc_mismatches": 0}

    def _device_sample(self, xs, label):
        pcm = getattr(xs, "pcm", None)
        if pcm is None:
            return super()._device_sample(xs, label)
        dev = self.dev
        dev.reset_state()
        r = send_audio(dev, pcm, label)
        d = dev.digest()
        res = self.res
        if r["x_crc"] != x_crc(xs):
            self.fe["x_crc_mismatches"] += 1
            res["mismatches"] += 1
            raise HilError(
                f"the device's frontend fed its network other inputs than the Python twin "
                f"(CRC {r['x_crc']:08x} against {x_crc(xs):08x})",
                self.result(),
            )
        n = len(xs)
        self.fe["utterances"] += 1
        self.fe["hop"] += [c for c, done in r["chunks"] if done]
        self.fe["finish"].append(r["fe_finish"])
        self.fe["frames"].append(r["fe_frames"] / n)
        self.fe.setdefault("net_mean", []).append(r["net_sum"] / n)
        self.fe.setdefault("net_max", []).append(r["net_max"])
        self.fe.setdefault("slot_max", []).append(r["slot_max"])
        kind = "infer" if label is None else "train"  # AUDIO_RUN reports the sum and the max of its steps
        self.fe.setdefault(f"net_{kind}", []).append((r["net_sum"], n, r["net_max"]))
        if r["learn_n"]:  # the learning frames of this utterance (the schedule's), measured on the device
            self.fe.setdefault("net_learn", []).append((r["learn_sum"], r["learn_n"], r["learn_max"]))
        return d, r["pred"]

    def frontend_costs(self) -> dict:
        """The frontend's cost in counter units (instructions on QEMU): per 10 ms hop while
        streaming, at the end of the utterance, per frame when the network reads it."""
        info = self.dev.info
        res = info.counter_res if info else 1
        f = self.fe
        if not f["utterances"]:
            return {}
        v = lambda a: np.asarray(a, np.float64) * res
        hop, fin, fr = v(f["hop"]), v(f["finish"]), v(f["frames"])
        per_hop = float(hop.mean() + fr.mean())
        return {
            "utterances": f["utterances"],
            "counter": info.counter_name if info else "none",
            "hop_mean": float(hop.mean()),
            "hop_max": float(hop.max()),
            "hop_p999": percentile_rank(hop + fr.max(), 99.9),  # with the largest per-frame feature cost
            "features_per_frame_mean": float(fr.mean()),
            "per_hop_mean": per_hop,
            "per_hop_max": float(hop.max() + fr.max()),
            "finish_mean": float(fin.mean()),
            "finish_max": float(fin.max()),
            "per_utterance_mean": float(hop.mean() * (len(hop) / f["utterances"]) + fin.mean() + fr.mean() * 101),
            "network_step_mean": float(np.mean(f["net_mean"]) * res),
            "network_step_max": float(np.max(f["net_max"]) * res),
            # after its audio, an utterance's work runs one unit per 10 ms slot beside a hop of the next audio:
            # the largest unit measured on the device (a padded frame, or a frame's input + network step), and
            # with the largest hop, what any frame can hold
            "slot_max": float(np.max(f["slot_max"]) * res),
            "frame_max": float(hop.max() + np.max(f["slot_max"]) * res) if len(hop) else None,
            **{
                f"network_{k}_{m}": v
                for k in ("infer", "train", "learn")
                for m, v in _net(f.get(f"net_{k}"), res).items()
            },
        }


def _net(runs, res) -> dict:
    """Mean and max per network step over AUDIO_RUNs given as (sum, steps, max) each ({} for none)."""
    if not runs:
        return {}
    a = np.asarray(runs, dtype=np.float64)
    return {"mean": float(a[:, 0].sum() / a[:, 1].sum() * res), "max": float(a[:, 2].max() * res)}


def audio_sets(corpus, split, norm, qm, support_limit: int = 0, query_limit: int = 0, seed: int = 0):
    """(support, query) as (list of AudioFrames, labels): PCM of each utterance and the model
    inputs the integer frontend computes from it."""
    sup = np.asarray(split.support)
    if support_limit:
        sup = sup[np.sort(np.random.default_rng(seed).permutation(len(sup))[:support_limit])]
    qry = np.asarray(split.query)[: query_limit or None]

    def one(idx):
        xs, ys = [], []
        for i in idx:
            pcm = FQ.pcm16(FQ.pcm16_samples(corpus.load(int(i))))
            xs.append(with_pcm(FQ.utterance_q(pcm, norm).x, pcm))
            ys.append(corpus.utterances[int(i)].label)
        return xs, np.asarray(ys, dtype=np.int64)

    if qm.cfg.n_in != FQ.N_FEATURES:
        raise EdgetpError(f"--audio needs a model with {FQ.N_FEATURES} inputs, this one has {qm.cfg.n_in}")
    return one(sup), one(qry)
