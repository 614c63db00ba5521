"""Google Speech Commands v2 reader over the dataset's own layout (docs/data.md).

::

    ROOT/<word>/<speaker>_nohash_<n>.wav      one utterance (16 kHz mono int16 in GSC)
    ROOT/validation_list.txt                  relative paths of the validation split
    ROOT/testing_list.txt                     relative paths of the testing split
    ROOT/_background_noise_/*.wav             long noise recordings (source of _silence_)

Every other utterance is in "train". Every file's header is checked (``edgetp.audio.wav``);
a bad file is skipped, named in ``Corpus.skipped`` with the reason, and the rest of the
corpus stays usable. A missing or empty split list is replaced by GSC's own hash rule
(:func:`edgetp.data.labels.which_set`) and said in ``Corpus.notes``.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetp.audio import wav
from edgetp.data.labels import BACKGROUND, NOHASH, SILENCE, SPLITS, UNKNOWN, label_index, label_names, which_set
from edgetp.errors import EdgetpError

LISTS = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
# Each background-noise file is cut in time so that _silence_ clips of different splits
# never overlap: train uses the first 80 %, validation the next 10 %, testing the last 10 %.
NOISE_REGIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "testing": (0.9, 1.0)}


@dataclass(frozen=True)
class Utterance:
    path: str  # relative to the corpus root, '/'-separated
    word: str
    label: int
    speaker: str  # "" for _silence_ clips
    split: str
    rep: int  # the <n> of <speaker>_nohash_<n>.wav (clip number for _silence_)
    sr: int  # the file's sample rate (resampled to 16 kHz when loaded)
    start: int = 0  # first sample (at 16 kHz) of the clip
    length: int | None = None  # samples at 16 kHz; None: the whole file
    stamp: str = ""  # "<bytes>:<mtime ns>", to notice a changed file

    @property
    def key(self) -> str:
        return self.path if self.length is None else f"{self.path}@{self.start}+{self.length}"


@dataclass(frozen=True)
class Skipped:
    path: str
    kind: str
    reason: str


@dataclass
class Corpus:
    root: Path
    label_set: str
    label_names: list[str]
    utterances: list[Utterance]
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    noise_files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, i) -> Utterance:
        return self.utterances[i]

    def __iter__(self):
        return iter(self.utterances)

    @property
    def labels(self) -> np.ndarray:
        return np.array([u.label for u in self.utterances], dtype=np.int64)

    def path(self, i) -> Path:
        return self.root / self.utterances[i].path

    def load(self, i) -> np.ndarray:
        """Float32 samples of utterance ``i`` at 16 kHz."""
        u = self.utterances[i]
        return wav.load_16k(self.root / u.path, u.start, u.length)

    def select(self, split: str | None = None, speaker: str | None = None, words=None) -> np.ndarray:
        """Indices of the utterances matching every given filter, in corpus order."""
        words = None if words is None else set(words)
        return np.array(
            [
                i
                for i, u in enumerate(self.utterances)
                if (split is None or u.split == split)
                and (speaker is None or u.speaker == speaker)
                and (words is None or u.word in words)
            ],
            dtype=np.int64,
        )

    def speaker_counts(self, split: str | None = None) -> Counter:
        return Counter(u.speaker for u in self.utterances if u.speaker and (split is None or u.split == split))

    def fingerprint(self, indices) -> str:
        """SHA-1 of the utterances' keys and file stamps, in the order given."""
        h = hashlib.sha1()
        for i in indices:
            u = self.utterances[int(i)]
            h.update(f"{u.key}|{u.stamp}\n".encode())
        return h.hexdigest()

    def summary(self) -> dict:
        """Everything `edgetp data info` prints, as plain JSON-able data."""
        per_speaker: dict[str, Counter] = {}
        for u in self.utterances:
            if u.speaker:
                per_speaker.setdefault(u.speaker, Counter())[u.split] += 1
        speakers = sorted(per_speaker.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        return {
            "root": str(self.root),
            "labels": self.label_set,
            "label_names": list(self.label_names),
            "utterances": len(self.utterances),
            "splits": {s: sum(u.split == s for u in self.utterances) for s in SPLITS},
            "words": dict(sorted(Counter(u.word for u in self.utterances).items())),
            "speakers": [
                {"id": s, "utterances": sum(c.values()), **{k: c.get(k, 0) for k in SPLITS}} for s, c in speakers
            ],
            "background_noise": list(self.noise_files),
            "skipped": {
                "count": len(self.skipped),
                "by_kind": dict(sorted(Counter(s.kind for s in self.skipped).items())),
                "files": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            },
            "notes": list(self.notes),
        }


def _read_list(root: Path, split: str, notes: list[str]) -> set[str] | None:
    path = root / LISTS[split]
    if not path.is_file():
        notes.append(f"{LISTS[split]} missing: its split is chosen by GSC's hash rule of the speaker id")
        return None
    entries = {ln.strip().replace("\\", "/") for ln in path.read_text(errors="replace").splitlines()}
    entries.discard("")
    if not entries:
        notes.append(f"{LISTS[split]} is empty: its split is chosen by GSC's hash rule of the speaker id")
        return None
    return entries


def _probe(path: Path, rel: str, skipped: list[Skipped]):
    try:
        info = wav.probe(path)
        st = os.stat(path)
        return info, f"{st.st_size}:{st.st_mtime_ns}"
    except wav.WavError as exc:
        skipped.append(Skipped(rel, exc.kind, exc.reason))
        return None, ""


def _scan(root: Path, names: list[str], lists: dict, skipped: list[Skipped], progress) -> list[Utterance]:
    from tqdm import tqdm

    files = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] not in "._"):
        files += [(d.name, f) for f in sorted(d.iterdir()) if not f.name.startswith(".")]
    out = []
    for word, f in tqdm(files, desc="checking WAV files", unit="file", disable=progress, leave=False):
        rel = f"{word}/{f.name}"
        m = NOHASH.match(f.name)
        if not f.is_file() or m is None:
            skipped.append(Skipped(rel, "name", "not named <speaker>_nohash_<n>.wav"))
            continue
        info, stamp = _probe(f, rel, skipped)
        if info is None:
            continue
        listed = [s for s in ("testing", "validation") if lists[s] is not None and rel in lists[s]]
        if listed:
            split = listed[0]
        else:  # not on a list: train, unless GSC's rule picks a split whose list is missing
            rule = which_set(f.name)
            split = rule if rule != "train" and lists[rule] is None else "train"
        out.append(
            Utterance(rel, word, label_index(names, word), m["speaker"], split, int(m["rep"]), info.sr, stamp=stamp)
        )
    return out


def _silence(
    root: Path,
    utts: list[Utterance],
    names: list[str],
    fraction: float,
    rng,
    skipped: list[Skipped],
    notes: list[str],
    noise_files: list[str],
) -> list[Utterance]:
    noise_dir = root / BACKGROUND
    infos = []
    for f in sorted(noise_dir.glob("*.wav")) if noise_dir.is_dir() else []:
        rel = f"{BACKGROUND}/{f.name}"
        info, stamp = _probe(f, rel, skipped)
        if info is not None:
            noise_files.append(rel)
            infos.append((rel, info, wav.frames_16k(info), stamp))
    if not infos:
        notes.append(f"no usable {BACKGROUND}/*.wav: the label set has no {SILENCE} utterances")
        return []
    out = []
    for split in SPLITS:
        n = math.ceil(fraction * sum(u.split == split for u in utts))
        regions = [
            (rel, info, int(a * frames), int(b * frames), stamp)
            for rel, info, frames, stamp in infos
            for a, b in [NOISE_REGIONS[split]]
            if (b - a) * frames >= 16000
        ]
        if n and not regions:
            notes.append(f"{BACKGROUND} files are too short for {SILENCE} clips in {split}")
            continue
        for k in range(n):
            rel, info, a, b, stamp = regions[int(rng.integers(len(regions)))]
            start = a + int(rng.integers(b - a - 16000 + 1))
            out.append(Utterance(rel, SILENCE, names.index(SILENCE), "", split, k, info.sr, start, 16000, stamp))
    return out


def load_corpus(
    root,
    labels="paper",
    *,
    silence_fraction: float = 0.1,
    unknown_fraction: float | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> Corpus:
    """Read a GSC-layout corpus.

    ``labels``: ``"paper"``, ``"12"`` or a list of words (see :mod:`edgetp.data.labels`).
    ``silence_fraction``: with ``"12"``, each split gets ceil(fraction x its utterances)
    ``_silence_`` clips of 1 s cut (seeded) from the background noise.
    ``unknown_fraction``: if set, each split keeps at most ceil(fraction x its known-word
    utterances) ``_unknown_`` utterances (seeded choice, as TensorFlow's default 0.1);
    None keeps them all. ``progress``: tqdm's ``disable`` (None: a bar on terminals only).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EdgetpError(f"corpus folder {root} does not exist")
    names = label_names(labels)
    skipped: list[Skipped] = []
    notes: list[str] = []
    lists = {s: _read_list(root, s, notes) for s in LISTS}
    utts = _scan(root, names, lists, skipped, None if progress is None else not progress)
    if not utts:
        raise EdgetpError(
            f"no usable utterance in {root} (expected <word>/<speaker>_nohash_<n>.wav; {len(skipped)} files skipped)"
        )
    listed = {rel for s in lists.values() if s for rel in s}
    missing = len(listed - {u.path for u in utts} - {s.path for s in skipped})
    if missing:
        notes.append(f"{missing} files named in the split lists are not in the corpus")
    rng = np.random.default_rng(seed)
    unk = names.index(UNKNOWN)
    if unknown_fraction is not None:
        keep = []
        for split in SPLITS:
            part = [u for u in utts if u.split == split]
            unknown = [u for u in part if u.label == unk]
            n = min(len(unknown), math.ceil(unknown_fraction * (len(part) - len(unknown))))
            chosen = set(rng.choice(len(unknown), size=n, replace=False).tolist()) if n else set()
            keep += [u for u in part if u.label != unk] + [u for j, u in enumerate(unknown) if j in chosen]
        utts = sorted(keep, key=lambda u: u.path)
    noise_files: list[str] = []
    if SILENCE in names:
        utts = utts + _silence(root, utts, names, silence_fraction, rng, skipped, notes, noise_files)
    else:
        noise_files = sorted(f"{BACKGROUND}/{f.name}" for f in (root / BACKGROUND).glob("*.wav"))
    resampled = sum(u.sr != wav.TARGET_SR for u in utts)
    if resampled:
        notes.append(f"{resampled} utterances are not at 16 kHz: resampled to 16 kHz when loaded")
    if skipped:
        notes.append(f"{len(skipped)} files skipped (see 'skipped')")
    label_set = labels if isinstance(labels, str) else "custom"
    return Corpus(root, label_set, names, utts, skipped, notes, noise_files)
