"""The offline keyword corpus: GSC v2's exact layout, spoken by espeak-ng (docs/data.md).

Each speaker is an espeak-ng voice (``<accent>+<variant>``) with its own base pitch,
speed, microphone tilt and usual background noise; each repetition jitters pitch
(+-4), speed (+-8 %) and intonation (``word``, ``word.``, ``word!``, ``word?``), is placed
in a 1 s clip, mixed with background noise at the speaker's SNR +- 3 dB and scaled to a
random peak level (-26..-3 dBFS). Everything is seeded: one seed gives the same bytes.

Two kinds of speakers:

- ``speakers`` regular ones (accents and variants of ``REGULAR_*``, pitch 25..75),
  ``reps`` repetitions per word, spread over train/validation/testing (10 % each for
  the last two) with ids drawn so that GSC's hash rule agrees with the lists;
- ``wide`` extra pretraining ones (train split only; more variants, pitch 0..99, speed
  110..230, microphone tilt +-0.8, SNR 5..35 dB): voice variety for pretraining, drawn from
  their own random stream so the corpus's other utterances are byte-identical with or
  without them;
- ``distinct`` held-out-able ones, whose accent, variant and pitch no other speaker
  has, ``distinct_reps`` repetitions per word, all in train (the adaptation protocol
  uses a speaker's train-split utterances). Their ids do not depend on the seed; the
  first is :data:`DEFAULT_SPEAKER`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgetp.audio.wav import write_wav16
from edgetp.data import espeak, noise
from edgetp.data.labels import BACKGROUND, PAPER_WORDS, which_set
from edgetp.errors import EdgetpError

REGULAR_LANGS = ("en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
REGULAR_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "Alex",
    "Alicia",
    "Andrea",
    "Andy",
    "Annie",
    "adam",
    "anika",
    "belinda",
    "boris",
    "caleb",
    "david",
    "ed",
    "edward",
    "john",
    "linda",
    "max",
    "michel",
    "paul",
    "quincy",
    "rob",
    "robert",
    "steph",
    "travis",
    "victor",
    "zac",
)
# Variants of the ``wide`` pretraining speakers besides REGULAR_VARIANTS: every installed human-like one
# except the voice groups' variants and their families (grandma/grandpa, croak, klatt*, f5, whisper*,
# Storm, m8, norbert), so the held-out groups stay voices of a kind never heard in pretraining.
WIDE_VARIANTS = REGULAR_VARIANTS + (
    "AnxiousAndy",
    "Denis",
    "Diogo",
    "Gene",
    "Gene2",
    "Henrique",
    "Hugo",
    "Jacky",
    "Lee",
    "Marco",
    "Mario",
    "Michael",
    "Mike",
    "Mr",
    "Nguyen",
    "RicishayMax",
    "RicishayMax2",
    "RicishayMax3",
    "Tweaky",
    "antonio",
    "aunty",
    "benjamin",
    "edward2",
    "gustave",
    "iven",
    "iven2",
    "iven3",
    "iven4",
    "marcelo",
    "miguel",
    "pablo",
    "pedro",
    "sandro",
    "shelby",
    "steph2",
    "steph3",
)
# (accent, variant, pitch, speed): used by no regular speaker (accents, variants and,
# for most, pitches outside 25..75), so a held-out one is an unseen kind of voice.
# The first 4 are the default corpus' distinct speakers: the protocol's TEST voice group
# (edgetp.kws.speakers); the next 6 (``--distinct 10``) its DEVELOPMENT voice group.
DISTINCT_VOICES = (
    ("en-gb-scotland", "grandma", 88, 150),
    ("en-us-nyc", "croak", 12, 185),
    ("en-gb-scotland", "klatt3", 62, 165),
    ("en-us-nyc", "f5", 94, 140),
    ("en-gb-scotland", "whisperf", 50, 160),
    ("en-us-nyc", "Storm", 35, 172),
    ("en-us-nyc", "grandpa", 20, 150),
    ("en-gb-scotland", "klatt4", 80, 180),
    ("en-us-nyc", "m8", 8, 160),
    ("en-gb-scotland", "norbert", 70, 145),
)
N_TEST_GROUP = 4  # DISTINCT_VOICES[:4]: in every corpus with the default settings
PROTOCOL_DISTINCT = len(DISTINCT_VOICES)  # `edgetp data synth-kws OUT --distinct 10`: both voice groups
DEFAULT_SPEAKER = "6210c7b0"  # DISTINCT_VOICES[0]; checked by tests/test_data_synth.py
DEFAULTS = {"speakers": 48, "reps": 3, "distinct": 4, "distinct_reps": 10}
PUNCT = ("", ".", "!", "?")
PUNCT_P = (0.4, 0.3, 0.2, 0.1)
CLIP = 16000
MAX_WORD = 15000
INFO = "synth_info.json"
GENERATOR_VERSION = 1  # bump when the same settings would give other audio


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: str  # espeak-ng -v argument, <accent>+<variant>
    pitch: int
    speed: int
    tilt: float  # y[n] = x[n] + tilt * x[n-1]: > 0 duller, < 0 brighter microphone
    noise: str  # the background file this speaker is usually recorded with
    snr_db: float
    split: str
    reps: int
    distinct: bool


def _speaker_id(spec: str, split: str) -> str:
    """8 hex digits from ``spec``, salted until GSC's hash rule puts the id in ``split``."""
    for salt in range(100000):
        sid = hashlib.sha1(f"{spec}#{salt}".encode()).hexdigest()[:8]
        if which_set(sid) == split:
            return sid
    raise AssertionError("unreachable: 10 % splits are hit within a few hundred tries")


def _recording(rng, tilt: float, snr_db: tuple) -> tuple:
    """A speaker's microphone (tilt within +-``tilt``), usual background file and SNR in ``snr_db``, drawn from
    ``rng`` in that order."""
    names = sorted(noise.NAMES)
    return (
        round(float(rng.uniform(-tilt, tilt)), 3),
        names[int(rng.integers(len(names)))],
        round(float(rng.uniform(*snr_db)), 1),
    )


def plan_speakers(
    speakers: int, reps: int, distinct: int, distinct_reps: int, seed: int, wide: int = 0
) -> list[Speaker]:
    """The corpus's speakers (distinct ones first, wide ones last), fully determined by the arguments."""
    if distinct > len(DISTINCT_VOICES):
        raise EdgetpError(f"at most {len(DISTINCT_VOICES)} distinct speakers")
    langs, variants = espeak.available() if shutil.which("espeak-ng") else (None, None)
    out = []
    for lang, var, pitch, speed in DISTINCT_VOICES[:distinct]:
        sid = _speaker_id(f"distinct:{lang}+{var}:{pitch}:{speed}", "train")
        r = np.random.default_rng([int(sid, 16)])
        out.append(
            Speaker(sid, f"{lang}+{var}", pitch, speed, *_recording(r, 0.5, (15, 30)), "train", distinct_reps, True)
        )
    rng = np.random.default_rng([seed, 104729])
    usable = [v for v in REGULAR_VARIANTS if variants is None or v in variants]
    accents = [a for a in REGULAR_LANGS if langs is None or a in langs]
    n_held = max(1, round(0.1 * speakers)) if speakers >= 3 else 0
    splits = ["validation"] * n_held + ["testing"] * n_held + ["train"] * (speakers - 2 * n_held)
    splits = [splits[i] for i in rng.permutation(speakers)]
    var_order = rng.permutation(len(usable))
    for i in range(speakers):
        voice = f"{accents[int(rng.integers(len(accents)))]}+{usable[var_order[i % len(usable)]]}"
        pitch, speed = int(rng.integers(25, 76)), int(rng.integers(135, 196))
        sid = _speaker_id(f"regular:{seed}:{i}:{voice}:{pitch}:{speed}", splits[i])
        out.append(Speaker(sid, voice, pitch, speed, *_recording(rng, 0.5, (12, 35)), splits[i], reps, False))
    wrng = np.random.default_rng([seed, 7919])  # its own stream: the speakers above do not depend on ``wide``
    wvars = [v for v in WIDE_VARIANTS if variants is None or v in variants]
    for i in range(wide):
        voice = f"{accents[int(wrng.integers(len(accents)))]}+{wvars[int(wrng.integers(len(wvars)))]}"
        pitch, speed = int(wrng.integers(0, 100)), int(wrng.integers(110, 231))
        sid = _speaker_id(f"wide:{seed}:{i}:{voice}:{pitch}:{speed}", "train")
        out.append(Speaker(sid, voice, pitch, speed, *_recording(wrng, 0.8, (5, 35)), "train", reps, False))
    return out


def render(spk: Speaker, word: str, rep: int, seed: int, background: dict) -> np.ndarray:
    """One utterance: 16000 float32 samples, deterministic for its arguments."""
    rng = np.random.default_rng([seed, int(spk.id, 16), zlib.crc32(word.encode()), rep])
    pitch = int(np.clip(spk.pitch + rng.integers(-4, 5), 0, 99))
    speed = int(spk.speed * rng.uniform(0.92, 1.08))
    text = word + PUNCT[int(rng.choice(len(PUNCT), p=PUNCT_P))]
    for _ in range(4):
        s = espeak.speak(text, spk.voice, pitch, speed)
        if len(s) <= MAX_WORD:
            break
        speed = int(speed * 1.2)
    s = s[:MAX_WORD].astype(np.float64)
    s[1:] += spk.tilt * s[:-1].copy()
    slack = CLIP - len(s)
    off = slack // 2 + int(rng.integers(-(slack // 4), slack // 4 + 1))
    clip = np.zeros(CLIP)
    clip[off : off + len(s)] = s
    name = spk.noise if rng.random() < 0.7 else sorted(background)[int(rng.integers(len(background)))]
    bg = background[name]
    start = int(rng.integers(len(bg) - CLIP))
    y = noise.mix(clip, bg[start : start + CLIP], spk.snr_db + rng.normal(0.0, 3.0), slice(off, off + len(s)))
    peak = 10.0 ** (rng.uniform(-26.0, -3.0) / 20.0)
    return (y * (peak / (np.abs(y).max() + 1e-12))).astype(np.float32)


_BACKGROUND: dict = {}


def _init_worker(background: dict) -> None:
    _BACKGROUND.update(background)


def _render_task(task) -> int:
    spk, word, seed, out = task
    for rep in range(spk.reps):
        write_wav16(Path(out) / word / f"{spk.id}_nohash_{rep}.wav", render(spk, word, rep, seed, _BACKGROUND))
    return spk.reps


def prepare_out(out: Path, info_name: str, params: dict, force: bool, held: str, kind: str) -> dict | None:
    """The existing info (``out/info_name``) when ``out`` already holds this very corpus; else ``out`` made
    ready to write: new, empty, or (``force``) emptied. ``held`` and ``kind`` name the corpus in the refusals
    ("{out} holds {held} made with other settings", "{out} exists and is not an {kind}")."""
    info_path = out / info_name
    if info_path.is_file():
        old = json.loads(info_path.read_text())
        if old.get("complete") and old.get("params") == params:
            return old
        if not force:
            raise EdgetpError(
                f"{out} holds {held} made with other settings"
                f"{'' if old.get('complete') else ' (interrupted)'}; add --force to remake it"
            )
        shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()):
        raise EdgetpError(f"{out} exists and is not an {kind}; choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    return None


def synth_kws(
    out_dir,
    speakers: int = DEFAULTS["speakers"],
    reps: int = DEFAULTS["reps"],
    seed: int = 0,
    *,
    distinct: int = DEFAULTS["distinct"],
    distinct_reps: int = DEFAULTS["distinct_reps"],
    wide: int = 0,
    words=PAPER_WORDS,
    jobs: int = 2,
    force: bool = False,
    progress: bool | None = None,
) -> dict:
    """Write the corpus to ``out_dir`` and return its description (also in ``synth_info.json``).

    Re-running with the same settings on a complete corpus does nothing; ``force`` remakes a
    synthetic corpus made with other settings (never a folder holding anything else).
    """
    from tqdm import tqdm

    if min(speakers, reps, distinct_reps, wide) < 0 or distinct < 0 or speakers + distinct == 0 or reps < 1:
        raise EdgetpError("need at least one speaker and one repetition")
    words = [str(w) for w in words]
    bad = [w for w in words if not w or not all(c.isalnum() or c == "-" for c in w)]
    if bad or len(set(words)) != len(words):
        raise EdgetpError(f"words must be distinct, plain words (got {bad or words})")
    espeak.binary()
    out = Path(out_dir).expanduser()
    params = {
        "generator_version": GENERATOR_VERSION,
        "words": words,
        "speakers": speakers,
        "reps": reps,
        "distinct": distinct,
        "distinct_reps": distinct_reps,
        "seed": seed,
        "espeak_ng": espeak.version(),
        **({"wide": wide} if wide else {}),
    }  # absent when 0: older corpora keep their params
    done = prepare_out(out, INFO, params, force, "a synthetic corpus", "edgetp synthetic corpus")
    if done is not None:
        return done
    t0 = time.time()
    (out / INFO).write_text(json.dumps({"complete": False, "params": params}))
    plan = plan_speakers(speakers, reps, distinct, distinct_reps, seed, wide)
    background = noise.make_background(seed)
    (out / BACKGROUND).mkdir()
    for name, y in background.items():
        write_wav16(out / BACKGROUND / name, y)
    for w in words:
        (out / w).mkdir()
    tasks = [(spk, w, seed, str(out)) for spk in plan for w in words]
    total = sum(spk.reps for spk in plan) * len(words)
    bar = tqdm(total=total, desc="synthesising", unit="utt", disable=None if progress is None else not progress)
    if jobs <= 1:
        _init_worker(background)
        for t in tasks:
            bar.update(_render_task(t))
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs, _init_worker, (background,)) as pool:
            for n in pool.imap_unordered(_render_task, tasks, chunksize=4):
                bar.update(n)
    bar.close()
    for split, name in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
        lines = sorted(
            f"{w}/{s.id}_nohash_{r}.wav" for s in plan if s.split == split for w in words for r in range(s.reps)
        )
        (out / name).write_text("".join(f"{ln}\n" for ln in lines))
    info = {
        "complete": True,
        "params": params,
        "generator": "edgetp data synth-kws",
        "default_speaker": plan[0].id if distinct else None,
        "utterances": total,
        "speakers": [asdict(s) for s in plan],
    }
    (out / INFO).write_text(json.dumps(info, indent=1))
    return {**info, "seconds": round(time.time() - t0, 1)}
