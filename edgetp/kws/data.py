"""Features for the KWS protocols: corpus + split -> normalised (N, 101, 120) arrays."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetp import paths
from edgetp.errors import EdgetpError


REHEARSAL_SEED = 1000  # + the protocol seed: the rehearsal draw differs per seed, like the support set


def recompress(x: np.ndarray, gain: float) -> np.ndarray:
    """The paper frontend's features with a stronger log: ``log1p(gain * S / max S)`` instead of
    ``log1p(S / max S)`` (computed from the log-mel block, ``expm1`` undoes the paper's log1p),
    and the Δ / ΔΔ of that. ``gain`` 1 returns ``x`` unchanged. With ``gain`` 1000 the features
    span about 30 dB below the utterance's peak instead of being nearly linear in power.
    Frames x features (…, 101, 120) in, the same shape out (float32)."""
    if gain == 1.0:
        return x
    from edgetp.audio.frontend import DELTA1, DELTA2, N_MELS

    L = np.log1p(gain * np.expm1(np.asarray(x[..., :N_MELS], dtype=np.float64)))
    return np.concatenate([L, np.matmul(DELTA1.T, L), np.matmul(DELTA2.T, L)], axis=-1).astype(np.float32)


@dataclass
class ModelInputs:
    """What a model does to the paper frontend's (N, 101, 120) features: ``recompress`` with
    its ``log_gain`` (``frontend["log_gain"]``, default 1), then its normalisation."""

    norm: object          # edgetp.audio.frontend.NormConstants
    log_gain: float = 1.0

    @property
    def per_utterance(self) -> bool:
        return self.norm.per_utterance

    @property
    def scale(self) -> np.ndarray:
        return self.norm.scale

    def apply(self, batch: np.ndarray) -> np.ndarray:
        return self.norm.apply(recompress(np.asarray(batch), self.log_gain))


@dataclass
class SplitData:
    """Normalised features and labels of one speaker-adaptation split."""

    split: object  # edgetp.data.splits.SpeakerSplit
    support: tuple
    query: tuple
    test: tuple
    rehearsal: tuple | None = None   # other speakers' pretraining utterances mixed into fine-tuning
    rehearsal_idx: np.ndarray | None = None

    @property
    def n_rehearsal(self) -> int:
        return 0 if self.rehearsal_idx is None else int(len(self.rehearsal_idx))


def open_corpus(data_root, labels: str = "paper"):
    from edgetp.data.gsc import load_corpus

    root = Path(data_root) if data_root else paths.default_data_root()
    if not root.is_dir():
        hint = ("generate the offline corpus with: edgetp data synth-kws " + str(root)
                if not data_root else "give the folder of a GSC-layout corpus")
        raise EdgetpError(f"data root {root} does not exist; {hint}")
    return load_corpus(root, labels=labels)


def corpus_for(model, data_root):
    """The corpus a model reads (its label set, checked)."""
    corpus = open_corpus(data_root, model.frontend.get("label_set", "paper"))
    if list(corpus.label_names) != list(model.labels):
        raise EdgetpError(f"the corpus' labels ({len(corpus.label_names)}) differ from the model's ({len(model.labels)})")
    return corpus


def model_corpus(model, data_root, speaker: str | None):
    """The corpus a model reads (its label set, checked) and the held-out speaker to use:
    ``speaker``, else the one the model was pretrained without."""
    corpus = corpus_for(model, data_root)
    speaker = speaker or model.recipe.get("held_out_speaker")
    if not speaker:
        raise EdgetpError("give --speaker (list them with: edgetp data speakers --data-root DIR)")
    return corpus, speaker


def features(corpus, indices, cache=None) -> np.ndarray:
    from edgetp.data.cache import cached_features

    return cached_features(corpus, indices, cache or paths.cache_dir())


def labelled(corpus, indices, norm, cache=None, limit: int | None = None, seed: int = 0):
    """(x, y) with x normalised by the model's constants; ``limit`` subsamples (seeded)."""
    indices = np.asarray(indices, dtype=np.int64)
    if limit is not None and len(indices) > limit:
        indices = np.sort(np.random.default_rng(seed).choice(indices, limit, replace=False))
    x = norm.apply(np.asarray(features(corpus, indices, cache)))
    y = np.array([corpus.utterances[i].label for i in indices], dtype=np.int64)
    return x, y


def pretrain_pool(corpus, indices, speakers=None) -> np.ndarray:
    """``indices`` restricted to ``speakers`` (a model's ``recipe["pretrain_speakers"]``) and
    silence clips; all of ``indices`` when ``speakers`` is None (a model without the record)."""
    if not speakers:
        return np.asarray(indices, dtype=np.int64)
    keep = set(speakers) | {""}
    return np.array([i for i in indices if corpus.utterances[i].speaker in keep], dtype=np.int64)


def speaker_data(corpus, speaker: str, shots, seed: int, norm, cache=None, test_limit: int | None = None,
                 rehearsal: float = 0.0, pretrain_speakers=None) -> SplitData:
    """The split's normalised features; ``rehearsal`` > 0 adds round(rehearsal * |support|)
    utterances drawn (seeded per seed) from the pretrain split, which never holds ``speaker``
    (only ``pretrain_speakers``' utterances when given: never another held-out voice)."""
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
    return SplitData(sp, labelled(corpus, sp.support, norm, cache), labelled(corpus, sp.query, norm, cache),
                     labelled(corpus, sp.test, norm, cache, limit=test_limit, seed=0), reh, idx)


def training_set(d: SplitData) -> tuple:
    """What fine-tuning trains on: the support set, plus the rehearsal utterances if any."""
    if d.rehearsal is None:
        return d.support
    return (np.concatenate([d.support[0], d.rehearsal[0]]), np.concatenate([d.support[1], d.rehearsal[1]]))
