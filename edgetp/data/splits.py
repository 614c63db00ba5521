"""The paper's speaker-adaptation split (docs/data.md, "Speaker adaptation").

Hold out one speaker ``s``:

- ``pretrain``   = the train split without ``s`` (``_silence_`` clips included);
- ``s``'s train-split utterances are split per class, seeded: the first
  ``(4 n) // 5`` of a shuffled class (80 %) form the support pool, the rest (20 %) is
  the ``query`` set;
- ``support``    = ``shots`` utterances per class from the pool (``"all"``: the whole
  pool); a class whose pool has fewer than ``shots`` is dropped from the support set
  (it stays in the query set) and listed in ``dropped``;
- ``validation`` / ``test`` = the validation / testing split without ``s`` (``test``
  measures whether personalisation hurts everyone else).

All index arrays are int64 indices into ``corpus.utterances``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edgetp.errors import EdgetpError

HINT = "list speakers with: edgetp data speakers --data-root DIR"


@dataclass
class SpeakerSplit:
    speaker: str
    shots: int | str
    seed: int
    pretrain: np.ndarray
    support: np.ndarray
    query: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    dropped: list[str] = field(default_factory=list)

    def sizes(self) -> dict:
        return {k: int(len(getattr(self, k))) for k in ("pretrain", "support", "query", "validation", "test")}


def speakers_by_count(corpus, split: str | None = "train") -> list[tuple[str, int]]:
    """(speaker, utterances) pairs, most utterances first (ties by id).

    ``split="train"`` (the default) counts what the adaptation protocol can use;
    ``None`` counts every split.
    """
    return sorted(corpus.speaker_counts(split).items(), key=lambda kv: (-kv[1], kv[0]))


def speaker_split(corpus, speaker: str, shots=5, seed: int = 0) -> SpeakerSplit:
    """The paper's protocol for held-out ``speaker``; ``shots`` is an int >= 1 or "all"."""
    if shots != "all" and not (isinstance(shots, (int, np.integer)) and shots >= 1):
        raise EdgetpError(f"shots must be a positive integer or 'all', not {shots!r}")
    mine = [i for i, u in enumerate(corpus.utterances) if u.speaker == speaker]
    if not mine:
        raise EdgetpError(f"speaker {speaker!r} has no utterances in {corpus.root}; {HINT}")
    own_train = [i for i in mine if corpus.utterances[i].split == "train"]
    if not own_train:
        where = ", ".join(f"{n} in {s}" for s, n in sorted(Counter(corpus.utterances[i].split for i in mine).items()))
        raise EdgetpError(
            f"speaker {speaker!r} has no utterances in the train split ({where}); "
            f"the protocol adapts on train-split utterances; {HINT}"
        )
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i in own_train:
        by_class.setdefault(corpus.utterances[i].label, []).append(i)
    support, query, dropped = [], [], []
    for label in sorted(by_class):
        items = np.array(by_class[label], dtype=np.int64)[rng.permutation(len(by_class[label]))]
        n_pool = (4 * len(items)) // 5
        pool, q = items[:n_pool], items[n_pool:]
        query += q.tolist()
        if shots == "all":
            support += pool.tolist()
        elif len(pool) >= shots:
            support += pool[:shots].tolist()
        else:
            dropped.append(corpus.label_names[label])
    if not support:
        raise EdgetpError(
            f"speaker {speaker!r}: no class has {shots} utterances in its 80 % part "
            f"({len(own_train)} train utterances); use fewer shots or {HINT}"
        )

    def others(split):
        return np.array(
            [i for i, u in enumerate(corpus.utterances) if u.split == split and u.speaker != speaker], dtype=np.int64
        )

    return SpeakerSplit(
        speaker,
        shots,
        seed,
        others("train"),
        np.array(support, dtype=np.int64),
        np.array(query, dtype=np.int64),
        others("validation"),
        others("testing"),
        dropped,
    )
