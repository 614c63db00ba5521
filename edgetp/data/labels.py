"""Label sets and GSC's own split rule (docs/data.md, "Label sets", "Splits").

- ``"paper"``: the 35 words of GSC v2 in alphabetical order, then ``_unknown_`` (36
  outputs, as in the paper; any other word folder maps to ``_unknown_``).
- ``"12"``: the common 12-class task, in TensorFlow's order: ``_silence_``,
  ``_unknown_``, then yes no up down left right on off stop go. ``_silence_`` clips
  are cut from ``_background_noise_``; every other word is ``_unknown_``.
- a list of words: those words then ``_unknown_``.

:func:`which_set` is the rule GSC's README gives for assigning a file to a split
from the SHA-1 of its speaker id; the reader uses it when a split list is missing or
empty, and the synthetic corpus writes lists that agree with it.
"""

from __future__ import annotations

import hashlib
import re

from edgetp.errors import EdgetpError

PAPER_WORDS = (
    "backward",
    "bed",
    "bird",
    "cat",
    "dog",
    "down",
    "eight",
    "five",
    "follow",
    "forward",
    "four",
    "go",
    "happy",
    "house",
    "learn",
    "left",
    "marvin",
    "nine",
    "no",
    "off",
    "on",
    "one",
    "right",
    "seven",
    "sheila",
    "six",
    "stop",
    "three",
    "tree",
    "two",
    "up",
    "visual",
    "wow",
    "yes",
    "zero",
)
KWS12_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
BACKGROUND = "_background_noise_"
SPLITS = ("train", "validation", "testing")

_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
NOHASH = re.compile(r"^(?P<speaker>[^_/\\]+)_nohash_(?P<rep>\d+)\.wav$")


def label_names(labels) -> list[str]:
    """Class names of a label set: ``"paper"``, ``"12"`` or a list of words."""
    if isinstance(labels, str):
        if labels == "paper":
            return list(PAPER_WORDS) + [UNKNOWN]
        if labels == "12":
            return [SILENCE, UNKNOWN] + list(KWS12_WORDS)
        raise EdgetpError(
            f"unknown label set {labels!r}: use 'paper' (35 words + _unknown_), "
            "'12' (10 keywords + _silence_ + _unknown_) or a list of words"
        )
    words = [str(w) for w in labels]
    if not words or len(set(words)) != len(words):
        raise EdgetpError("a custom label set needs distinct words")
    return words + [UNKNOWN]


def label_index(names: list[str], word: str) -> int:
    """Index of a word in a label set (``_unknown_`` for words outside it)."""
    try:
        return names.index(word)
    except ValueError:
        return names.index(UNKNOWN)


def which_set(filename: str, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """GSC's split rule: "train", "validation" or "testing" from the speaker id's SHA-1.

    Every utterance of a speaker lands in the same split; ``filename`` may be a path,
    a ``<speaker>_nohash_<n>.wav`` name or a bare speaker id.
    """
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    speaker = re.sub(r"_nohash_.*$", "", base)
    hashed = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    percentage = (hashed % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "testing"
    return "train"
