"""`edgetp data`: make the offline corpus, inspect a GSC-layout corpus, compute features.

edgetp data synth-kws OUT [--speakers N --reps N --distinct N --distinct-reps N --wide N --seed S --jobs J --force]
edgetp data real-mix OUT --real DIR --noise DIR --base DIR [--copies N --seed S --choose-percent P --snr LO,HI
                     --peak LO,HI --shift-ms MS --speed LO,HI --force]   (a synthetic corpus plus augmented real clips)
edgetp data real-dev OUT --real DIR [--choose-percent P --force]   (the real development view)
edgetp data prepare-default [--jobs J]   (the default corpus + its feature cache; setup.sh runs it)
edgetp data info --data-root DIR [--labels paper|12] [--json PATH]
edgetp data speakers --data-root DIR [--split train|validation|testing|all] [--top N]
edgetp data features IN.wav ... --out F.npz [--frontend float|fixed] [--log-gain G]
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from edgetp import paths
from edgetp.audio import FRONTENDS
from edgetp.data.labels import PAPER_WORDS
from edgetp.errors import EdgetpError


def _synth(args) -> int:
    from edgetp.data.synth import synth_kws

    info = synth_kws(
        args.out,
        speakers=args.speakers,
        reps=args.reps,
        seed=args.seed,
        distinct=args.distinct,
        distinct_reps=args.distinct_reps,
        wide=args.wide,
        words=args.words.split(",") if args.words else PAPER_WORDS,
        jobs=args.jobs,
        force=args.force,
    )
    words = len(info["params"]["words"])
    print(f"{args.out}: {info['utterances']} utterances, {len(info['speakers'])} speakers, {words} words{_took(info)}")
    if info.get("default_speaker"):
        print(f"default held-out speaker: {info['default_speaker']}")
    return 0


def _took(info: dict) -> str:
    """How the corpus came to be: built in so many seconds, or found complete."""
    return f" in {info['seconds']} s" if "seconds" in info else " (already there, unchanged)"


def _pair(text: str, what: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise EdgetpError(f"{what} {text!r}: expected LO,HI (two numbers)") from None
    return lo, hi


def _parts_line(info: dict) -> str:
    p = info["speakers"]
    return (
        f"real speakers: pretrain {len(p['pretrain'])}, choose {len(p['choose'])}, "
        f"adapt {len(p['adapt'])} ({','.join(p['adapt'])})"
    )


def _real_mix(args) -> int:
    from edgetp.data.real import real_mix

    info = real_mix(
        args.out,
        args.real,
        args.noise,
        args.base,
        copies=args.copies,
        seed=args.seed,
        choose_percent=args.choose_percent,
        snr_db=_pair(args.snr, "--snr"),
        peak_dbfs=_pair(args.peak, "--peak"),
        shift_ms=args.shift_ms,
        speed=_pair(args.speed, "--speed"),
        force=args.force,
    )
    n = info["utterances"]
    print(
        f"{args.out}: {n['base']} base utterances + {n['real']} real ({n['real_clips']} clips x "
        f"{info['params']['copies']}){_took(info)}"
    )
    print(_parts_line(info))
    return 0


def _real_dev(args) -> int:
    from edgetp.data.real import real_dev

    info = real_dev(args.out, args.real, choose_percent=args.choose_percent, force=args.force)
    n = info["utterances"]
    print(f"{args.out}: adapt part {n['adapt']} clips (train), choose part {n['choose']} clips (testing list)")
    print(_parts_line(info))
    return 0


def _prepare_default(args) -> int:
    from edgetp.data.cache import split_features
    from edgetp.data.gsc import load_corpus
    from edgetp.data.labels import SPLITS
    from edgetp.data.synth import synth_kws

    out = paths.default_data_root()
    info = synth_kws(out, jobs=args.jobs, force=True)
    took = f"made in {info['seconds']} s" if "seconds" in info else "already there"
    print(
        f"default corpus {out}: {info['utterances']} utterances, {len(info['speakers'])} speakers ({took}); "
        f"default held-out speaker {info['default_speaker']}"
    )
    corpus = load_corpus(out)
    for split in SPLITS:
        split_features(corpus, split, paths.cache_dir())
    print(f"feature cache {paths.cache_dir()}: ready")
    return 0


def _corpus(args):
    from edgetp.data.gsc import load_corpus

    return load_corpus(args.data_root, labels=args.labels)


def _info(args) -> int:
    corpus = _corpus(args)
    s = corpus.summary()
    print(f"corpus {s['root']}  (labels: {s['labels']}, {len(s['label_names'])} classes)")
    print(f"utterances: {s['utterances']}  " + "  ".join(f"{k}: {v}" for k, v in s["splits"].items()))
    print("words: " + ", ".join(f"{w} {n}" for w, n in s["words"].items()))
    print(f"speakers: {len(s['speakers'])}")
    for sp in s["speakers"]:
        print(
            f"  {sp['id']}  {sp['utterances']:5d}  (train {sp['train']}, validation {sp['validation']}, "
            f"testing {sp['testing']})"
        )
    print(f"background noise files: {len(s['background_noise'])}")
    print(f"skipped: {s['skipped']['count']}" + "".join(f"  {k}: {v}" for k, v in s["skipped"]["by_kind"].items()))
    for f in s["skipped"]["files"]:
        print(f"  {f['path']}: {f['reason']}")
    for note in s["notes"]:
        print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=1))
        print(f"wrote {args.json}")
    return 0


def _speakers(args) -> int:
    from edgetp.data.splits import speakers_by_count

    corpus = _corpus(args)
    split = None if args.split == "all" else args.split
    rows = speakers_by_count(corpus, split)
    per_word: dict[str, Counter] = {}
    for u in corpus.utterances:
        if u.speaker and (split is None or u.split == split):
            per_word.setdefault(u.speaker, Counter())[u.word] += 1
    print(f"{'speaker':>10}  {'utterances':>10}  {'words':>5}  {'min/word':>8}   ({args.split} split)")
    for sid, n in rows[: args.top or None]:
        print(f"{sid:>10}  {n:>10}  {len(per_word[sid]):>5}  {min(per_word[sid].values()):>8}")
    if not rows:
        print(f"no speaker has utterances in the {args.split} split")
    return 0


def _features(args) -> int:
    from edgetp.audio import frontend, wav
    from edgetp.kws.data import check_gain, check_running_max, recompress

    out = Path(args.out)
    if out.suffix != ".npz":
        raise EdgetpError(f"--out must name a .npz file, not {out}")
    gain = args.log_gain
    check_gain(gain, "--log-gain")  # the rule of edgetp pretrain --log-gain and model_norm
    decay = check_running_max(args.running_max, "--running-max")
    if args.frontend == "fixed":
        from edgetp.audio import frontend_q

        try:
            frontend_q.check_log_gain(gain)
        except EdgetpError as exc:
            raise EdgetpError(f"--log-gain {gain:g}: {exc}") from None
        feats = np.stack(
            [
                frontend_q.features_q(frontend_q.load_pcm16(f), log_gain=gain, running_max_decay=decay)
                for f in args.inputs
            ]
        )
        conf = dict(frontend.CONFIG.to_dict(), arithmetic="integer (edgetp.audio.frontend_q), dequantised")
    else:
        feats = recompress(frontend.features_batch([wav.load_16k(f) for f in args.inputs]), gain, decay)
        conf = frontend.CONFIG.to_dict()
    conf["log_gain"] = gain
    if decay is not None:
        conf["running_max_decay"] = decay
    np.savez(out, features=feats, files=np.array([str(f) for f in args.inputs]), frontend=np.array(json.dumps(conf)))
    print(
        f"wrote {out}: features {feats.shape} (files, frames, features), {args.frontend} frontend, "
        f"log gain {gain:g}" + (f", running maximum D {decay}" if decay is not None else "") + ", before normalisation"
    )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "data", help="keyword data: offline corpus, corpus summary, features", description=__doc__.split("\n\n")[0]
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    from edgetp.data.synth import DEFAULTS

    s = sub.add_parser("synth-kws", help="write an espeak-ng keyword corpus in GSC v2 layout")
    s.add_argument("out", help="output folder (new or empty; rerunning with the same settings is a no-op)")
    s.add_argument("--speakers", type=int, default=DEFAULTS["speakers"], help="regular speakers (%(default)s)")
    s.add_argument("--reps", type=int, default=DEFAULTS["reps"], help="repetitions per word of a regular speaker")
    s.add_argument(
        "--distinct",
        type=int,
        default=DEFAULTS["distinct"],
        help="held-out-able speakers with voices no other speaker has (%(default)s)",
    )
    s.add_argument(
        "--distinct-reps",
        type=int,
        default=DEFAULTS["distinct_reps"],
        help="repetitions per word of a distinct speaker (%(default)s)",
    )
    s.add_argument(
        "--wide",
        type=int,
        default=0,
        help="extra pretraining speakers (train split only) with more variants, pitch 0..99, speed "
        "110..230, stronger microphone tilt and noise; the other utterances stay byte-identical",
    )
    s.add_argument("--words", help="comma-separated words (default: GSC v2's 35)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--jobs", type=int, default=2, help="worker processes (%(default)s)")
    s.add_argument("--force", action="store_true", help="remake a synthetic corpus made with other settings")
    s.set_defaults(func=_synth)

    from edgetp.data.real import MIX_DEFAULTS as M

    r = sub.add_parser(
        "real-mix",
        help="a pretraining corpus: a synth-kws corpus plus augmented real clips",
        description="Links a synth-kws corpus (--base) and adds the pretrain part of a real GSC-layout "
        "folder (--real; speakers split by a hash of their id, the adaptation and choose "
        "parts left out), each clip as recorded and as seeded copies with real noise "
        "(--noise) at a random SNR, a time shift and a peak level (docs/data.md).",
    )
    r.add_argument("out", help="output folder (new or empty; rerunning with the same settings is a no-op)")
    r.add_argument("--real", required=True, help="real clips in GSC layout (<word>/<speaker>_nohash_<n>.wav)")
    r.add_argument("--noise", required=True, help="folder of real noise clips (.wav)")
    r.add_argument("--base", required=True, help="a corpus made by `edgetp data synth-kws` (linked, not copied)")
    r.add_argument(
        "--copies",
        type=int,
        default=M["copies"],
        help="utterances per real clip: as recorded + COPIES-1 augmented (%(default)s)",
    )
    r.add_argument("--seed", type=int, default=M["seed"])
    r.add_argument("--snr", default="{:g},{:g}".format(*M["snr_db"]), help="noise SNR range in dB (%(default)s)")
    r.add_argument("--peak", default="{:g},{:g}".format(*M["peak_dbfs"]), help="peak level range in dBFS (%(default)s)")
    r.add_argument("--shift-ms", type=int, default=M["shift_ms"], help="time shift up to +-MS ms (%(default)s)")
    r.add_argument(
        "--speed",
        default=",".join(f"{v:g}" for v in M["speed"]),
        metavar="LO,HI",
        help="speed perturbation: each copy played a random factor in [LO, HI] faster, tempo, pitch and formants "
        "together (%(default)s: off)",
    )
    r.add_argument("--force", action="store_true", help="remake a real-mix corpus made with other settings")
    v = sub.add_parser(
        "real-dev", help="the real development view: adaptation speakers (train) and choose speakers (testing list)"
    )
    v.add_argument("out", help="output folder (new or empty)")
    v.add_argument("--real", required=True, help="real clips in GSC layout")
    v.add_argument("--force", action="store_true", help="remake a real-dev view made with other settings")
    for q in (r, v):
        q.add_argument(
            "--choose-percent",
            type=int,
            default=M["choose_percent"],
            help="share of the non-adaptation speakers in the choose part, by a hash of the id (%(default)s)",
        )
    r.set_defaults(func=_real_mix)
    v.set_defaults(func=_real_dev)

    d = sub.add_parser("prepare-default", help="make the default offline corpus and its feature cache")
    d.add_argument("--jobs", type=int, default=2, help="worker processes (%(default)s)")
    d.set_defaults(func=_prepare_default)

    for name, fn, text in (
        ("info", _info, "summarise a GSC-layout corpus"),
        ("speakers", _speakers, "list speakers by number of utterances"),
    ):
        q = sub.add_parser(name, help=text)
        q.add_argument(
            "--data-root",
            default=str(paths.default_data_root()),
            help="corpus folder in GSC v2 layout (default: %(default)s)",
        )
        q.add_argument("--labels", default="paper", choices=["paper", "12"])
        if name == "info":
            q.add_argument("--json", help="also write the summary as JSON to this file")
        else:
            q.add_argument("--split", default="train", choices=["train", "validation", "testing", "all"])
            q.add_argument("--top", type=int, default=0, help="show only the first N")
        q.set_defaults(func=fn)

    f = sub.add_parser("features", help="frontend features of WAV files, saved as .npz")
    f.add_argument("inputs", nargs="+", metavar="IN.wav")
    f.add_argument("--out", required=True, help="output .npz (arrays: features (files, 101, 120), files)")
    f.add_argument(
        "--frontend",
        choices=FRONTENDS,
        default="float",
        help="float: the librosa-equal float pipeline (default); fixed: the device's integer twin "
        "(edgetp.audio.frontend_q), dequantised to the same scale",
    )
    f.add_argument(
        "--log-gain",
        type=float,
        default=1.0,
        metavar="G",
        help="L = log1p(G S / max S), a model's frontend log_gain (kws-mcu: 1000); "
        "1 (default) is the paper's features; G >= 1 (fixed: up to frontend_q.LOG_GAIN_MAX)",
    )
    f.add_argument(
        "--running-max",
        type=int,
        default=None,
        metavar="D",
        help="max S is the causal running maximum falling D/256 octave per frame (a model's frontend "
        "running_max_decay, 1..255) instead of the utterance's",
    )
    f.set_defaults(func=_features)
