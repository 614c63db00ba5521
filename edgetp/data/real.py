"""Real recordings in pretraining (docs/data.md, "Real speech"): speaker parts and the mixed corpus.

A folder of real clips in GSC layout (e.g. the project's real development set) is split by speaker, once
and for all, into three parts that never share a speaker:

- **adapt**: speakers with >= 4 clips of each of the ten core words, the real personalisation measurement
  (the rule of ``real_gsc_layout.py``); never pretrained on;
- **choose**: about ``choose_percent`` % of the other speakers, picked by a hash of the speaker id (so the
  part does not depend on which other clips are present); zero-shot figures for every choice; never trained on;
- **pretrain**: the rest; their clips may be mixed into a pretraining corpus.

``real_mix`` writes such a corpus: a synthetic ``synth-kws`` corpus (linked, not copied) plus the pretrain
part's clips, each as recorded and as ``copies - 1`` seeded, augmented copies (real noise at a random SNR,
a time shift, a peak level), since ~1 k real clips would otherwise vanish among ~25 k synthetic ones.
``real_dev`` writes the development view: the adapt part in train, the choose part in the testing list.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from edgetp.audio import wav
from edgetp.data.labels import BACKGROUND, KWS12_WORDS, NOHASH
from edgetp.errors import EdgetpError
from edgetp.data.synth import INFO as SYNTH_INFO, prepare_out

CORE = KWS12_WORDS  # the ten core words of GSC
ADAPT_MIN = 4  # clips of every core word that make an adaptation speaker
PART_SALT = "edgetp-real-part"
MIX_INFO = "real_mix_info.json"
DEV_INFO = "real_dev_info.json"
SHIPPED = Path(__file__).with_name("gsc_real")  # the development view's clips, copied (README there: CC BY 4.0)
MIX_DEFAULTS = {
    "copies": 8,
    "seed": 0,
    "choose_percent": 30,
    "snr_db": (0.0, 20.0),
    "peak_dbfs": (-30.0, -1.0),
    "shift_ms": 100,
    "speed": (1.0, 1.0),
}
MIX_VERSION = 1  # bump when the same settings would give other audio


def is_choose(speaker: str, choose_percent: int) -> bool:
    """A non-adaptation speaker is in the choose part when the hash of its id falls below the percentage."""
    return int(hashlib.sha1(f"{PART_SALT}:{speaker}".encode()).hexdigest()[:8], 16) % 100 < choose_percent


def speaker_parts(per_speaker: dict, choose_percent: int) -> dict:
    """{"adapt", "choose", "pretrain"} -> sorted speaker ids, from each speaker's Counter of clips per word."""
    if not 0 < choose_percent < 100:
        raise EdgetpError(f"--choose-percent must be between 1 and 99 (got {choose_percent})")
    adapt = sorted(s for s, c in per_speaker.items() if all(c[w] >= ADAPT_MIN for w in CORE))
    rest = sorted(set(per_speaker) - set(adapt))
    choose = [s for s in rest if is_choose(s, choose_percent)]
    return {"adapt": adapt, "choose": choose, "pretrain": [s for s in rest if s not in set(choose)]}


def scan_real(root) -> tuple[list[tuple[str, str, int, str]], dict]:
    """Clips of a real GSC-layout folder: [(word, speaker, rep, relative path)], and per speaker a Counter of
    clips per word. Every clip's header is checked; a folder that is not such a layout is refused."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EdgetpError(f"--real {root}: not a folder")
    clips, per = [], {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for f in sorted(d.iterdir()):
            m = NOHASH.match(f.name)
            if not m:
                raise EdgetpError(f"--real {root}: {d.name}/{f.name} is not named <speaker>_nohash_<n>.wav")
            wav.probe(f)  # a bad header is an EdgetpError naming the file
            clips.append((d.name, m["speaker"], int(m["rep"]), f"{d.name}/{f.name}"))
            per.setdefault(m["speaker"], Counter())[d.name] += 1
    if not clips:
        raise EdgetpError(f"--real {root}: no clips in GSC layout (<word>/<speaker>_nohash_<n>.wav)")
    return clips, per


def read_noise(root) -> tuple[list[str], list[np.ndarray]]:
    """The noise clips (every .wav directly in ``root``), float32 at 16 kHz."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EdgetpError(f"--noise {root}: not a folder")
    names = sorted(f.name for f in root.iterdir() if f.suffix.lower() == ".wav")
    if not names:
        raise EdgetpError(f"--noise {root}: no .wav files")
    clips = [wav.load_16k(root / n) for n in names]
    if any(len(c) < 1600 or not np.any(c) for c in clips):
        raise EdgetpError(f"--noise {root}: every noise clip must hold at least 0.1 s of sound")
    return names, clips


def _digest(root: Path, rels) -> str:
    """SHA-1 of the relative paths and sizes: names a folder's content without its machine path."""
    h = hashlib.sha1()
    for r in rels:
        h.update(f"{r}:{(root / r).stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def change_speed(y: np.ndarray, factor: float) -> np.ndarray:
    """``y`` played ``factor`` times faster (tempo, pitch and formants together, as a tape would: the classic
    speed perturbation that makes other speakers of few), resampled by a ratio of small integers and
    centred in the clip's length (zero-filled or cut at both ends)."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    r = Fraction(factor).limit_denominator(50)
    z = resample_poly(y, r.denominator, r.numerator)
    n, m = len(y), len(z)
    if m >= n:
        return z[(m - n) // 2 : (m - n) // 2 + n]
    out = np.zeros(n, dtype=z.dtype)
    out[(n - m) // 2 : (n - m) // 2 + m] = z
    return out


def augment(y: np.ndarray, bg: np.ndarray, rng, snr_db, peak_dbfs, shift_ms: int, speed=(1.0, 1.0)) -> np.ndarray:
    """One augmented copy: a speed change by a random factor in ``speed`` (drawn only when the range is not
    1, so that corpora made without it keep their audio), a time shift (zero-filled), real noise at a random
    SNR, a random peak level.

    Speech power is taken over the loudest 0.5 s (a clip is mostly silence around one word)."""
    if tuple(speed) != (1.0, 1.0):
        y = change_speed(y, rng.uniform(*speed))
    n = len(y)
    s = int(rng.integers(-shift_ms, shift_ms + 1)) * 16
    z = np.zeros(n)
    if s >= 0:
        z[s:] = y[: n - s]
    else:
        z[:s] = y[-s:]
    bg = np.resize(bg, n)  # tiles a short noise clip
    bg = np.roll(bg, int(rng.integers(n)))
    w = min(8000, n)
    energy = np.convolve(np.square(z), np.ones(w), "valid") / w
    ps = float(energy.max()) or 1e-12
    pn = float(np.mean(np.square(bg))) or 1e-12
    snr = rng.uniform(*snr_db)
    out = z + np.sqrt(ps / (pn * 10.0 ** (snr / 10.0))) * bg
    peak = 10.0 ** (rng.uniform(*peak_dbfs) / 20.0)
    return (out * (peak / (np.abs(out).max() + 1e-12))).astype(np.float32)


def _ready_out(out: Path, info_name: str, params: dict, force: bool) -> dict | None:
    """The existing info when ``out`` already holds this very corpus; else an empty ``out`` to write, its info
    marked incomplete until the corpus is."""
    done = prepare_out(out, info_name, params, force, "a corpus", f"edgetp {info_name[:-10].replace('_', '-')} corpus")
    if done is None:
        (out / info_name).write_text(json.dumps({"complete": False, "params": params}))
    return done


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


def _real_params(real: Path, clips, choose_percent: int) -> dict:
    return {
        "name": real.name,
        "clips": len(clips),
        "digest": _digest(real, [c[3] for c in clips]),
        "choose_percent": choose_percent,
    }


def real_mix(
    out_dir,
    real_dir,
    noise_dir,
    base_dir,
    *,
    copies: int = MIX_DEFAULTS["copies"],
    seed: int = MIX_DEFAULTS["seed"],
    choose_percent: int = MIX_DEFAULTS["choose_percent"],
    snr_db=MIX_DEFAULTS["snr_db"],
    peak_dbfs=MIX_DEFAULTS["peak_dbfs"],
    shift_ms: int = MIX_DEFAULTS["shift_ms"],
    speed=MIX_DEFAULTS["speed"],
    force: bool = False,
) -> dict:
    """Write the mixed corpus to ``out_dir``; return its description (also in ``real_mix_info.json``)."""
    if copies < 1:
        raise EdgetpError(f"--copies must be >= 1 (got {copies})")
    if not (snr_db[0] <= snr_db[1] and peak_dbfs[0] <= peak_dbfs[1] <= 0 and 0 <= shift_ms <= 500):
        raise EdgetpError(
            "need --snr LO,HI with LO <= HI, --peak LO,HI with LO <= HI <= 0 dBFS and 0 <= --shift-ms <= 500"
        )
    speed = tuple(map(float, speed))
    if not (0.5 <= speed[0] <= speed[1] <= 2.0):
        raise EdgetpError(f"need --speed LO,HI with 0.5 <= LO <= HI <= 2 (got {speed[0]:g},{speed[1]:g})")
    base, real, noise = (Path(p).expanduser() for p in (base_dir, real_dir, noise_dir))
    try:
        synth = json.loads((base / SYNTH_INFO).read_text())
    except (OSError, ValueError):
        synth = {}
    if not synth.get("complete"):
        raise EdgetpError(
            f"--base {base}: not a complete corpus of `edgetp data synth-kws` (no complete {SYNTH_INFO}); make it first"
        )
    clips, per = scan_real(real)
    words = set(synth["params"]["words"])
    stray = sorted({c[0] for c in clips} - words)
    if stray:
        raise EdgetpError(f"--real {real}: words the base corpus does not have: {', '.join(stray)}")
    clash = sorted(set(per) & {s["id"] for s in synth["speakers"]})
    if clash:
        raise EdgetpError(f"--real {real}: speaker ids also in the base corpus: {', '.join(clash[:5])}")
    noise_names, noise_clips = read_noise(noise)
    parts = speaker_parts(per, choose_percent)
    params = {
        "mix_version": MIX_VERSION,
        "base": {"name": base.name, **synth["params"]},
        "real": _real_params(real, clips, choose_percent),
        "noise": {"name": noise.name, "clips": len(noise_names), "digest": _digest(noise, noise_names)},
        "copies": copies,
        "seed": seed,
        "snr_db": list(map(float, snr_db)),
        "peak_dbfs": list(map(float, peak_dbfs)),
        "shift_ms": shift_ms,
        # recorded only when used: a corpus made before the option keeps its parameters (and its audio)
        **({"speed": list(speed)} if speed != (1.0, 1.0) else {}),
    }
    out = Path(out_dir).expanduser()
    done = _ready_out(out, MIX_INFO, params, force)
    if done is not None:
        return done
    t0 = time.time()
    n_base = 0
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        if d.name == BACKGROUND:
            _link(d, out / BACKGROUND)
            continue
        for f in sorted(d.iterdir()):
            _link(f, out / d.name / f.name)
            n_base += 1
    for name in ("validation_list.txt", "testing_list.txt"):
        shutil.copyfile(base / name, out / name)
    keep = set(parts["pretrain"])
    n_real = 0
    for word, spk, rep, rel in clips:
        if spk not in keep:
            continue
        _link(real / rel, out / word / f"{spk}_nohash_{rep * copies}.wav")  # copy 0: as recorded
        y = wav.load_16k(real / rel)
        # each clip's own stream: a clip's copies do not depend on which other clips there are
        rng = np.random.default_rng([seed, int(hashlib.sha1(rel.encode()).hexdigest()[:8], 16)])
        for c in range(1, copies):
            bg = noise_clips[int(rng.integers(len(noise_clips)))]
            wav.write_wav16(
                out / word / f"{spk}_nohash_{rep * copies + c}.wav",
                augment(y, bg, rng, snr_db, peak_dbfs, shift_ms, speed),
            )
        n_real += copies
    info = {
        "complete": True,
        "params": params,
        "generator": "edgetp data real-mix",
        "speakers": parts,
        "utterances": {"base": n_base, "real": n_real, "real_clips": n_real // copies},
    }
    (out / MIX_INFO).write_text(json.dumps(info, indent=1))
    return {**info, "seconds": round(time.time() - t0, 1)}


def real_dev(out_dir, real_dir, *, choose_percent: int = MIX_DEFAULTS["choose_percent"], force: bool = False) -> dict:
    """The development view of a real folder (linked): the adapt part in train (for ``finetune --speaker``),
    the choose part in ``testing_list.txt`` (zero-shot figures, and the "other speakers"); the pretrain part
    is left out, so nothing here was trained on by a model of the mixed corpus."""
    real = Path(real_dir).expanduser()
    clips, per = scan_real(real)
    parts = speaker_parts(per, choose_percent)
    params = {"real": _real_params(real, clips, choose_percent)}
    out = Path(out_dir).expanduser()
    done = _ready_out(out, DEV_INFO, params, force)
    if done is not None:
        return done
    adapt, choose = set(parts["adapt"]), set(parts["choose"])
    testing = []
    for _, spk, _, rel in clips:
        if spk in adapt or spk in choose:
            _link(real / rel, out / rel)
            if spk in choose:
                testing.append(rel)
    listed = "".join(f"{r}\n" for r in testing)
    (out / "testing_list.txt").write_text(listed)
    # the same list again: a file on both lists is in testing, and an empty list would let GSC's hash rule
    # move some adaptation speakers out of train
    (out / "validation_list.txt").write_text(listed)
    info = {
        "complete": True,
        "params": params,
        "generator": "edgetp data real-dev",
        "speakers": parts,
        "utterances": {"adapt": sum(c[1] in adapt for c in clips), "choose": len(testing)},
    }
    (out / DEV_INFO).write_text(json.dumps(info, indent=1))
    return info
