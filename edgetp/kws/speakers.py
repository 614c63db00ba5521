"""The honest speaker protocol of the offline corpus (docs/data.md, "Speaker protocol").

Every speaker of a synthetic corpus has one role:

- **pretraining** speakers: the regular speakers of the train split (six English accents,
  36 ordinary variants, pitch 25..75). Nothing else is ever trained on before adaptation;
  a model records them as ``recipe["pretrain_speakers"]``;
- **other** speakers: the regular speakers of the validation / testing lists (held out
  of pretraining like GSC's); they measure what personalisation costs everyone else
  ("others before / after"): the validation-list speakers for the development rows, the
  testing-list speakers for the test rows (``others_split``), so that the forgetting
  figures used for choosing and those reported never share a speaker;
- the **held-out voice group**: the distinct speakers (``edgetp.data.synth.DISTINCT_VOICES``),
  whose accents (en-gb-scotland, en-us-nyc), variants and, for most, pitches no pretraining
  speaker has. It is split in two:

  - the **test group** ``DISTINCT_VOICES[:4]`` (in every corpus made with the default
    settings, so CI has it): zero-shot accuracy and the adaptation figures that are
    reported: a test run is the last step of a recorded recipe, never a step of the search,
    and each is a line of the model's test ledger (``edgetp.kws.ledger``);
  - the **development group** ``DISTINCT_VOICES[4:]`` (only in the protocol corpus,
    ``edgetp data synth-kws OUT --distinct 10``): zero-shot accuracy and adaptation
    figures used for every choice (recipe, augmentation, defaults).

  Each group speaker has 10 repetitions per word: 70 query utterances (2 per word) and a
  5-shot support set of 175.

Speaker ids of the groups are fixed by their voice (they do not depend on the corpus seed),
so they are computed here, not read from a corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.data.synth import DISTINCT_VOICES, N_TEST_GROUP, _speaker_id

ROLE_KEYS = ("pretrain_speakers", "dev_speakers", "test_speakers")


def _group_ids(voices) -> list[str]:
    return [_speaker_id(f"distinct:{lang}+{var}:{pitch}:{speed}", "train") for lang, var, pitch, speed in voices]


def test_group() -> list[str]:
    """The test voice group's speaker ids (reported, not for choosing; every run is a line of the test ledger)."""
    return _group_ids(DISTINCT_VOICES[:N_TEST_GROUP])


def dev_group() -> list[str]:
    """The development voice group's speaker ids (used for every choice)."""
    return _group_ids(DISTINCT_VOICES[N_TEST_GROUP:])


def voices() -> dict:
    """Speaker id -> espeak-ng voice of both groups (for cards and reports)."""
    return {sid: f"{v[0]}+{v[1]} (pitch {v[2]})" for sid, v in zip(_group_ids(DISTINCT_VOICES), DISTINCT_VOICES)}


@dataclass
class Roles:
    """The speakers of one corpus by role (sorted lists of ids)."""

    pretrain: list
    dev: list  # development voice group present in the corpus
    test: list  # test voice group present in the corpus

    def to_recipe(self) -> dict:
        """What a model records: ``pretrain_speakers`` (the key the seen-speaker check reads)
        and the groups it was pretrained without."""
        return {"pretrain_speakers": list(self.pretrain), "dev_speakers": dev_group(), "test_speakers": test_group()}


def roles(corpus) -> Roles:
    """Pretraining speakers = train-split speakers outside both voice groups (silence excluded)."""
    held = set(dev_group()) | set(test_group())
    present = set(corpus.speaker_counts(None))
    train = set(corpus.speaker_counts("train"))
    pre = sorted(s for s in train if s and s not in held)
    if not pre:
        raise EdgetpError(f"{corpus.root}: no pretraining speakers (every train speaker is in a held-out voice group)")
    return Roles(pre, sorted(s for s in dev_group() if s in present), sorted(s for s in test_group() if s in present))


def pretrain_indices(corpus, speakers) -> np.ndarray:
    """Train-split utterances of ``speakers`` plus the train split's ``_silence_`` clips."""
    keep = set(speakers) | {""}
    return np.array([i for i in corpus.select(split="train") if corpus.utterances[i].speaker in keep], dtype=np.int64)


def group_indices(corpus, speakers) -> np.ndarray:
    """Every utterance of ``speakers`` (all splits): the zero-shot set of a voice group."""
    keep = set(speakers)
    return np.array([i for i, u in enumerate(corpus.utterances) if u.speaker in keep], dtype=np.int64)


def resolve(model, corpus, which: str | None) -> list[str]:
    """The held-out speakers to adapt to: ``which`` = "test", "dev", a comma list of ids, or
    None (the model's test group when it records one and the corpus has it, else its
    ``held_out_speaker``)."""
    rec = model.recipe or {}
    if which in (None, "test", "dev"):
        group = rec.get(f"{which or 'test'}_speakers")
        if group:
            have = set(corpus.speaker_counts("train"))
            found = [s for s in group if s in have]
            if found:
                return found
            if which:
                hint = " (make the protocol corpus: edgetp data synth-kws OUT --distinct 10)" if which == "dev" else ""
                raise EdgetpError(f"{corpus.root} has none of the model's {which} speakers{hint}")
        elif which:
            raise EdgetpError(f"the model records no {which} speakers; give speaker ids")
        held = rec.get("held_out_speaker")
        if not held:
            raise EdgetpError("give --speaker (list them with: edgetp data speakers --data-root DIR)")
        return [held]
    return [s for s in which.split(",") if s]


OTHERS = ("validation", "testing")


def others_split(model, speakers, which: str | None = None) -> str:
    """The split whose speakers measure "others before / after" for a run adapting to ``speakers``.

    Default: ``validation`` when every speaker is in the model's development group (the rows used for
    choosing), else ``testing``. ``which`` ("validation" / "testing", ``--others``) overrides, except
    that a voice group's run never measures forgetting on the other group's split: the development
    rows' choices must not be made on the speakers the test rows report."""
    rec = model.recipe or {}
    dev, test = set(rec.get("dev_speakers") or ()), set(rec.get("test_speakers") or ())
    if which is not None and which not in OTHERS:
        raise EdgetpError(f"others must be validation or testing, not {which!r}")
    mine = set(speakers)
    if mine & dev and mine & test:
        raise EdgetpError("the speakers mix the development and test voice groups; adapt to each group in its own run")
    default = "validation" if mine and mine <= dev else "testing"
    if which is None or which == default:
        return default
    if mine & dev:
        raise EdgetpError(
            "others testing with development-group speakers: the testing-list speakers measure the "
            "test rows' forgetting, never a figure used for choosing"
        )
    if mine & test:
        raise EdgetpError(
            "others validation with test-group speakers: the validation-list speakers measure the "
            "development rows' forgetting"
        )
    return which


def outside_test_group(model, corpus, which: str | None, why: str) -> list[str]:
    """The speakers ``which`` names (as ``resolve``), refused when ``which`` is "test" or names any speaker of
    the model's test group: ``why`` says what the run would do with it (a sweep chooses, a benchmark spends)."""
    if which == "test":
        raise EdgetpError(f"--speaker test: {why}")
    speakers = resolve(model, corpus, which)
    held = set(speakers) & set((model.recipe or {}).get("test_speakers") or [])
    if held:
        raise EdgetpError(f"speaker {', '.join(sorted(held))} is in the model's test group: {why}")
    return speakers
