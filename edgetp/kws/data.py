"""Features for the KWS protocols: corpus + split -> normalised (N, 101, 120) arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetp import paths
from edgetp.audio.ahead import RUNNING_MAX_AHEAD_MAX as RUNNING_MAX_AHEAD_MAX
from edgetp.audio.ahead import check_running_max_ahead as check_running_max_ahead
from edgetp.errors import EdgetpError


REHEARSAL_SEED = 1000  # + the protocol seed: the rehearsal draw differs per seed, like the support set


def check_gain(gain, what: str) -> float:
    """``gain`` as a float if ``recompress`` takes it (a finite number >= 1), else an EdgetpError naming ``what``
    (the option or model field it came from)."""
    try:
        g = float(gain)
    except (TypeError, ValueError):
        g = float("nan")
    if not (np.isfinite(g) and g >= 1.0):
        raise EdgetpError(f"{what} must be a number >= 1 (1: the paper's log1p(S / max S)), got {gain}")
    return g


RECOMPRESS_CHUNK = 2048  # utterances per block of recompress' float64 work
RUNNING_MAX_F = 8  # the running maximum's decay: Q.8 of an octave (log2) per frame, as the integer frontend's l


def check_running_max(decay, what: str) -> int | None:
    """``decay`` as an int if the causal running maximum takes it (None: the paper's per-utterance maximum;
    a whole number 1..255: the maximum falls by decay / 256 of an octave per 10 ms frame, 2.35 dB/s per unit),
    else an EdgetpError naming ``what``."""
    if decay is None:
        return None
    if isinstance(decay, bool) or not isinstance(decay, (int, np.integer)) or not 1 <= int(decay) <= 255:
        raise EdgetpError(
            f"{what} must be a whole number in 1..255 (the running maximum falls by N/256 of an "
            f"octave, 2.35 N dB/s, per 10 ms frame), got {decay!r}"
        )
    return int(decay)


def read_ahead(m: np.ndarray, decay: int, ahead: int) -> np.ndarray:
    """``m`` (…, T, 1) of :func:`running_max` read ``ahead`` frames later: ``m[t + ahead]``, continued past the
    last frame as a stream of silence would continue it (falling by decay / 256 per frame). Causal with a delay
    of ``ahead`` frames; with ``ahead`` >= T on a clip, every frame is normalised by (nearly) the clip's maximum."""
    if ahead == 0:
        return m
    T = m.shape[-2]
    t = np.arange(T) + ahead
    past = (decay / float(1 << RUNNING_MAX_F)) * (t - T + 1)[:, None]
    return np.where((t < T)[:, None], m[..., np.minimum(t, T - 1), :], m[..., -1:, :] - past)


def running_max(log2_s: np.ndarray, decay: int) -> np.ndarray:
    """The causal normaliser of log2 mel powers (…, T, bands): ``m[t] = max(max_b l[t, b], m[t-1] - decay / 256)``
    from ``m[-1] = -inf``, so frame t depends on frames <= t only (a stream has no end whose maximum could be
    waited for) and the decay is a constant step in the log domain, as the integer frontend computes it.
    Shaped (…, T, 1)."""
    peak = np.max(log2_s, axis=-1)
    m = np.empty_like(peak)
    step = decay / float(1 << RUNNING_MAX_F)
    prev = np.full(peak.shape[:-1], -np.inf, dtype=peak.dtype)
    for t in range(peak.shape[-1]):
        prev = np.maximum(peak[..., t], prev - step)
        m[..., t] = prev
    return m[..., None]


# Per-channel normalisation (issue 26, the frontend's normalisation): each band's mean log power over the
# utterance's active frames (frame peak within CN_ACTIVE octaves of the utterance's), powers floored CN_FLOOR octaves
# below the utterance's peak so that digital silence cannot pull a mean to -inf.
CN_ACTIVE = 6.0  # octaves (~18 dB)
CN_FLOOR = 24.0  # octaves (~72 dB: a band of a speech frame sits 40 dB or more below its peak at 4 kHz)


def check_channel_norm(alpha, what: str) -> float:
    """``alpha`` as a float if the per-channel normalisation takes it (0: off, 1: each band's mean removed),
    else an EdgetpError naming ``what``."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        a = float("nan")
    if not (np.isfinite(a) and 0.0 <= a <= 1.0):
        raise EdgetpError(
            f"{what} must be a number in 0..1 (0: off, 1: each band's mean log power removed), got {alpha}"
        )
    return a


def normalise_channels(l2: np.ndarray, alpha: float) -> np.ndarray:
    """Per-channel (cepstral-mean-like) normalisation of log2 mel powers relative to the utterance's peak
    (…, T, bands; -inf for silence): ``l2 - alpha * (mu_b - mean_b mu_b)``, mu_b the band's mean of
    max(l2, -CN_FLOOR) over the active frames (frame peak >= -CN_ACTIVE). A microphone's or room's fixed
    colouring is a constant per band in this domain; removing each band's mean (relative to the bands'
    average, so the level stays) removes it. The result is re-peaked by the caller."""
    floor = np.maximum(l2, -CN_FLOOR)
    peak = np.max(l2, axis=-1, keepdims=True)
    active = peak >= np.max(peak, axis=-2, keepdims=True) - CN_ACTIVE
    mu = np.sum(np.where(active, floor, 0.0), axis=-2, keepdims=True) / np.sum(active, axis=-2, keepdims=True)
    return l2 - alpha * (mu - np.mean(mu, axis=-1, keepdims=True))


def recompress(
    x: np.ndarray,
    gain: float,
    running_max_decay: int | None = None,
    running_max_ahead: int = 0,
    channel_norm: float = 0.0,
) -> np.ndarray:
    """The paper frontend's features with a stronger log: ``log1p(gain * S / max S)`` instead of
    ``log1p(S / max S)`` (computed from the log-mel block, ``expm1`` undoes the paper's log1p),
    and the Δ / ΔΔ of that. ``gain`` 1 returns ``x`` unchanged. With ``gain`` 1000 the features
    span about 30 dB below the utterance's peak instead of being nearly linear in power.
    With ``running_max_decay`` D, ``max S`` is the causal running maximum (:func:`running_max`) instead of the
    utterance's: the streamable normalisation (issue 32); ``running_max_ahead`` A > 0 reads it A frames later
    (:func:`read_ahead`: causal with A frames of latency). Frames x features (…, 101, 120) in, the same shape out
    (float32). ``channel_norm`` > 0 applies :func:`normalise_channels` first (whole-utterance, like the utterance's
    maximum; not with the running maximum)."""
    if running_max_ahead and running_max_decay is None:
        raise EdgetpError("a running-maximum look-ahead needs a running maximum (running_max_decay)")
    if channel_norm and running_max_decay is not None:
        raise EdgetpError("the per-channel normalisation is whole-utterance: not with a running maximum")
    if gain == 1.0 and running_max_decay is None and not channel_norm:
        return x
    x = np.asarray(x)
    if x.ndim == 3 and len(x) > RECOMPRESS_CHUNK:  # float64 temporaries of a whole corpus would not fit in RAM
        out = np.empty(x.shape, np.float32)
        for i in range(0, len(x), RECOMPRESS_CHUNK):
            out[i : i + RECOMPRESS_CHUNK] = recompress(
                x[i : i + RECOMPRESS_CHUNK], gain, running_max_decay, running_max_ahead, channel_norm
            )
        return out
    from edgetp.audio.frontend import DELTA1, DELTA2, N_MELS

    r = np.expm1(np.asarray(x[..., :N_MELS], dtype=np.float64))
    if channel_norm:
        with np.errstate(divide="ignore"):
            l2 = normalise_channels(np.log2(r), channel_norm)
        top = np.max(l2, axis=(-2, -1), keepdims=True)
        r = np.where(np.isfinite(top), np.exp2(l2 - np.where(np.isfinite(top), top, 0.0)), 0.0)
    if running_max_decay is not None:
        with np.errstate(divide="ignore"):
            l2 = np.log2(r)
        m = read_ahead(running_max(l2, running_max_decay), running_max_decay, running_max_ahead)
        r = np.where(np.isfinite(m), np.exp2(l2 - np.where(np.isfinite(m), m, 0.0)), 0.0)
    L = np.log1p(gain * r)
    return np.concatenate([L, np.matmul(DELTA1.T, L), np.matmul(DELTA2.T, L)], axis=-1).astype(np.float32)


@dataclass
class ModelInputs:
    """What a model does to the paper frontend's (N, 101, 120) features: ``recompress`` with
    its ``log_gain`` (``frontend["log_gain"]``, default 1), ``running_max_decay`` (absent: the utterance's
    maximum) and ``running_max_ahead`` (absent: 0), then its normalisation."""

    norm: object  # edgetp.audio.frontend.NormConstants
    log_gain: float = 1.0
    running_max_decay: int | None = None  # frontend["running_max_decay"]: the causal running maximum
    running_max_ahead: int = 0  # frontend["running_max_ahead"]: frames the running maximum is read later
    channel_norm: float = 0.0  # frontend["channel_norm"]: alpha of the per-channel normalisation

    @property
    def per_utterance(self) -> bool:
        return self.norm.per_utterance

    @property
    def scale(self) -> np.ndarray:
        return self.norm.scale

    def apply(self, batch: np.ndarray) -> np.ndarray:
        return self.norm.apply(
            recompress(
                np.asarray(batch), self.log_gain, self.running_max_decay, self.running_max_ahead, self.channel_norm
            )
        )


@dataclass
class IntInputs:
    """The device's input stage on raw audio, in integers (``edgetp.audio.frontend_q``): the integer
    frontend with the model's log gain (``source``: what the feature cache holds, int32 Q.18), then
    its integer normalisation (``apply``): the int16/int8 inputs the device feeds its network, bit for
    bit (the C twin is checked by ``verify-c --frontend``)."""

    norm: object  # edgetp.audio.frontend_q.InputNorm of the model quantized as the device runs it

    @property
    def source(self):
        from edgetp.data.cache import Frontend

        if getattr(self.norm, "running_max_ahead", 0):  # the cache's key has no look-ahead: never read A = 0 rows
            raise EdgetpError(
                "the integer feature cache holds no running-maximum look-ahead yet (frontend running_max_ahead "
                f"{self.norm.running_max_ahead}); run this model with the float frontend"
            )
        return Frontend("fixed", self.norm.log_gain, self.norm.running_max_decay)

    def apply(self, feats: np.ndarray) -> np.ndarray:
        from edgetp.audio.frontend_q import normalise_q

        f = np.asarray(feats, dtype=np.int64)
        flat = f.reshape(-1, f.shape[-1])
        out = np.zeros(flat.shape, np.int64)
        lo, hi = self.norm.limits
        normalise_q(flat, self.norm.m, self.norm.s, lo, hi, out)
        return out.reshape(f.shape).astype(np.int8 if self.norm.xbits == 8 else np.int16)


@dataclass
class SplitData:
    """Normalised features and labels of one speaker-adaptation split."""

    split: object  # edgetp.data.splits.SpeakerSplit
    support: tuple
    query: tuple
    test: tuple  # the other speakers' utterances ("others before / after"), from split ``others``
    rehearsal: tuple | None = None  # other speakers' pretraining utterances mixed into fine-tuning
    rehearsal_idx: np.ndarray | None = None
    others: str = "testing"  # "validation" or "testing" (edgetp.kws.speakers.others_split)
    others_speakers: tuple = ()  # the speakers ``test`` holds (sorted ids)

    @property
    def n_rehearsal(self) -> int:
        return 0 if self.rehearsal_idx is None else int(len(self.rehearsal_idx))


def open_corpus(data_root, labels: str = "paper"):
    from edgetp.data.gsc import load_corpus

    root = Path(data_root) if data_root else paths.default_data_root()
    if not root.is_dir():
        hint = (
            "generate the offline corpus with: edgetp data synth-kws " + str(root)
            if not data_root
            else "give the folder of a GSC-layout corpus"
        )
        raise EdgetpError(f"data root {root} does not exist; {hint}")
    return load_corpus(root, labels=labels)


def corpus_for(model, data_root):
    """The corpus a model reads (its label set, checked)."""
    corpus = open_corpus(data_root, model.frontend.get("label_set", "paper"))
    if list(corpus.label_names) != list(model.labels):
        raise EdgetpError(
            f"the corpus' labels ({len(corpus.label_names)}) differ from the model's ({len(model.labels)})"
        )
    return corpus


def model_corpus(model, data_root, speaker: str | None):
    """The corpus a model reads (its label set, checked) and the held-out speaker to use:
    ``speaker``, else the one the model was pretrained without."""
    corpus = corpus_for(model, data_root)
    speaker = speaker or model.recipe.get("held_out_speaker")
    if not speaker:
        raise EdgetpError("give --speaker (list them with: edgetp data speakers --data-root DIR)")
    return corpus, speaker


def pretrain_speakers(model, corpus) -> set[str] | None:
    """The speakers whose utterances pretrained ``model``, or None when that cannot be told.

    ``recipe["pretrain_speakers"]`` when the model records it (``edgetp pretrain`` does);
    else recomputed the way ``edgetp pretrain`` split its corpus (every train-split
    speaker but ``held_out_speaker``), from the corpus its ``recipe["data"]`` names (a corpus
    name; older files hold a folder): the corpus at hand when it has that name, else that
    folder under ``$EDGETP_HOME`` (or the recorded folder, where it exists).
    """
    rec = model.recipe
    if "pretrain_speakers" in rec:
        sp = rec["pretrain_speakers"]
        if not isinstance(sp, list) or not all(isinstance(x, str) for x in sp):
            raise EdgetpError("the model's recipe 'pretrain_speakers' is not a list of speaker ids")
        return set(sp)
    data = rec.get("data")
    if not isinstance(data, str) or not data:
        return None
    src, here = Path(data).expanduser(), Path(corpus.root)
    if not src.is_absolute():
        src = paths.home() / src
    if src.name != here.name:
        if src.is_dir():
            from edgetp.data.gsc import load_corpus

            try:
                corpus = load_corpus(src, labels=model.frontend.get("label_set", "paper"))
            except EdgetpError:
                return None
        else:
            return None
    held = rec.get("held_out_speaker")
    return {sid for sid, n in corpus.speaker_counts("train").items() if n and sid != held}


ALLOW = "--allow-seen-speaker (finetune: --set allow_seen_speaker=true)"  # how each command allows it


def check_speaker(model, corpus, speaker, allow_seen: bool = False, model_name: str = "the model") -> dict:
    """Refuse (EdgetpError) a ``speaker`` (an id, or a list of ids) that pretrained ``model``: its
    accuracy would not be a held-out result. ``allow_seen`` overrides; the returned dict says what was
    found, for the report: ``{"seen_speaker": True/False/None (unknown), "allow_seen_speaker": bool}``
    (plus ``"seen_speakers"``, the ids that were seen or could not be checked, when there are any)."""
    speakers = [speaker] if isinstance(speaker, str) else list(speaker)
    seen = pretrain_speakers(model, corpus)
    held = model.recipe.get("held_out_speaker")
    if seen is None:
        unknown = [s for s in speakers if not (held and s == held)]  # the recipe names `held` as held out
        if unknown and not allow_seen:
            raise EdgetpError(
                f"cannot tell which speakers {model_name} was pretrained on (its recipe records no "
                f"pretrain_speakers and its corpus {model.recipe.get('data')!r} is not available), so "
                f"speaker {', '.join(unknown)} may not be held out; pass {ALLOW} to go on "
                "anyway"
            )
        out = {"seen_speaker": None if unknown else False, "allow_seen_speaker": bool(allow_seen)}
        return dict(out, seen_speakers=unknown) if unknown else out
    hit = [s for s in speakers if s in seen]
    if hit and not allow_seen:
        hint = f" (the model's held-out speaker is {held})" if held else ""
        raise EdgetpError(
            f"speaker {', '.join(hit)} {'is' if len(hit) == 1 else 'are'} in {model_name}'s pretraining "
            f"set ({len(seen)} speakers): its accuracy would not be a held-out result; choose a speaker "
            f"the model has not heard{hint}, or pass {ALLOW}"
        )
    out = {"seen_speaker": bool(hit), "allow_seen_speaker": bool(allow_seen)}
    return dict(out, seen_speakers=hit) if hit else out


def seen_note(info: dict, speaker=None) -> str | None:
    """The report's line when a speaker is not a checked held-out speaker (else None)."""
    who = ", ".join(info.get("seen_speakers") or ([speaker] if isinstance(speaker, str) else speaker or []))
    if info.get("seen_speaker") is True:
        return (
            f"speaker {who} was in the model's pretraining set (--allow-seen-speaker): these are NOT held-out results"
        )
    if info.get("seen_speaker") is None:
        return f"speaker {who} could not be checked against the model's pretraining set (--allow-seen-speaker)"
    return None


def features(corpus, indices, cache=None, source=None) -> np.ndarray:
    """Features of ``indices`` from ``source`` (an edgetp.data.cache.Frontend; the float frontend's by
    default): from ``cache`` when it is a feature source with ``take`` (a grid's table, ``edgetp.kws.grid``),
    else from the feature cache in that folder (default: ``$EDGETP_HOME/features``)."""
    from edgetp.data.cache import FLOAT, cached_features

    if hasattr(cache, "take"):
        return cache.take(corpus, indices, source or FLOAT)
    return cached_features(corpus, indices, cache or paths.cache_dir(), fe=source or FLOAT)


def subsample(indices, limit: int | None = None, seed: int = 0) -> np.ndarray:
    """``indices`` (int64), at most ``limit`` of them (a seeded draw, kept in order)."""
    indices = np.asarray(indices, dtype=np.int64)
    if limit is not None and len(indices) > limit:
        indices = np.sort(np.random.default_rng(seed).choice(indices, limit, replace=False))
    return indices


def labelled(corpus, indices, norm, cache=None, limit: int | None = None, seed: int = 0):
    """(x, y) with x the model's inputs (``norm``: ModelInputs on float features, or IntInputs on the
    integer frontend's); ``limit`` subsamples (seeded)."""
    indices = subsample(indices, limit, seed)
    x = norm.apply(np.asarray(features(corpus, indices, cache, getattr(norm, "source", None))))
    y = np.array([corpus.utterances[i].label for i in indices], dtype=np.int64)
    return x, y


def pretrain_pool(corpus, indices, speakers=None) -> np.ndarray:
    """``indices`` restricted to ``speakers`` (a model's ``recipe["pretrain_speakers"]``) and
    silence clips; all of ``indices`` when ``speakers`` is None (a model without the record)."""
    if not speakers:
        return np.asarray(indices, dtype=np.int64)
    keep = set(speakers) | {""}
    return np.array([i for i in indices if corpus.utterances[i].speaker in keep], dtype=np.int64)


def speaker_data(
    corpus,
    speaker: str,
    shots,
    seed: int,
    norm,
    cache=None,
    test_limit: int | None = None,
    rehearsal: float = 0.0,
    pretrain_speakers=None,
    others: str = "testing",
) -> SplitData:
    """The split's normalised features; ``rehearsal`` > 0 adds round(rehearsal * |support|)
    utterances drawn (seeded per seed) from the pretrain split, which never holds ``speaker``
    (only ``pretrain_speakers``' utterances when given: never another held-out voice).
    ``others``: the split ("validation" / "testing") whose speakers measure forgetting."""
    from edgetp.data.splits import speaker_split

    sp = speaker_split(corpus, speaker, shots, seed)
    if len(sp.support) == 0:
        raise EdgetpError(f"speaker {speaker}: no class has {shots} utterances in its support pool")
    reh = idx = None
    if rehearsal > 0:
        pool = pretrain_pool(corpus, sp.pretrain, pretrain_speakers)
        n = min(len(pool), max(1, round(rehearsal * len(sp.support))))
        idx = np.sort(np.random.default_rng(REHEARSAL_SEED + seed).choice(pool, n, replace=False))
        reh = labelled(corpus, idx, norm, cache)
    pool = {"validation": sp.validation, "testing": sp.test}.get(others)
    if pool is None:
        raise EdgetpError(f"others must be validation or testing, not {others!r}")
    pool = subsample(pool, test_limit, seed=0)
    who = tuple(sorted({corpus.utterances[i].speaker for i in pool} - {""}))
    return SplitData(
        sp,
        labelled(corpus, sp.support, norm, cache),
        labelled(corpus, sp.query, norm, cache),
        labelled(corpus, pool, norm, cache),
        reh,
        idx,
        others,
        who,
    )


def training_set(d: SplitData) -> tuple:
    """What fine-tuning trains on: the support set, plus the rehearsal utterances if any."""
    if d.rehearsal is None:
        return d.support
    return (np.concatenate([d.support[0], d.rehearsal[0]]), np.concatenate([d.support[1], d.rehearsal[1]]))
