"""`edgetp detect`: keywords in a continuous stream, and their miss rate / false alarms per hour (issue 32).

    edgetp detect --model M [--fixed] LONG.wav [--json F] [--plot F.png]
    edgetp detect --eval --model M [--fixed] --data-root DIR [--speaker S ...] [--noise DIR] [--snr 10]
                  [--minutes N] [--seed K] --json F [--plot DET.png]

A model trained with a running maximum (``pretrain --running-max D``) streams with it; one normalised by the
utterance's maximum (the shipped models) streams with the running maximum read ahead (``STREAM_DECAY``,
``STREAM_AHEAD``). The stream runs through that frontend, the network (float, or the integer reference with
--fixed) and the detector (docs/detect.md).
"""

from __future__ import annotations

import json
from pathlib import Path


from edgetp.errors import EdgetpError
from edgetp.cli._options import add_seen_speaker_option

BLOCK_S = 60  # seconds of a WAV read at a time
DET_POINTS = 41


def register(sub):
    p = sub.add_parser(
        "detect",
        help="detect keywords in a continuous 16 kHz stream (or --eval: miss rate, "
        "false alarms per hour and a DET curve on a stream built from clips)",
        description="Runs a model over a long WAV without resets and reports the "
        "keywords (the ten core words) it hears, with time and margin (docs/detect.md).",
    )
    p.add_argument("wav", nargs="?", metavar="LONG.wav", help="a mono 16 kHz WAV of any length")
    p.add_argument("--model", required=True, help="shipped model name or model file")
    p.add_argument("--fixed", action="store_true", help="the integer network and detector the device runs")
    p.add_argument(
        "--threshold",
        metavar="T|JSON",
        help="margin threshold in readout units: one number, or a JSON object (or file) word -> number "
        "(default: the model's recipe detect.threshold, else the detector's default)",
    )
    p.add_argument("--window", type=int, default=None, help="frames summed (default 100: 1 s)")
    p.add_argument("--refractory", type=int, default=None, help="frames suppressed after a report (default 50)")
    p.add_argument("--json", metavar="F", help="write the detections (or the --eval figures) as JSON")
    p.add_argument(
        "--plot",
        metavar="F.png",
        help="draw the keywords' margins over time with the detections (--eval: the DET curve)",
    )
    e = p.add_argument_group("--eval: a labelled stream built from clips")
    e.add_argument("--eval", action="store_true", help="build a stream from a corpus' clips and score the detector")
    e.add_argument("--data-root", help="GSC-layout corpus")
    e.add_argument(
        "--speaker",
        nargs="+",
        help="speaker ids (or test / dev) whose clips make the stream (default: the corpus' --split)",
    )
    seen = "accept --speaker ids that pretrained the model (or cannot be checked): not held-out figures"
    add_seen_speaker_option(e, seen)
    e.add_argument(
        "--split",
        choices=("validation", "testing"),
        default="testing",
        help="the split whose clips make the stream without --speaker (default testing; choose "
        "thresholds on validation)",
    )
    e.add_argument("--noise", help="folder of noise WAVs under the whole stream (default: silent pauses)")
    e.add_argument("--snr", type=float, default=10.0, help="speech-to-noise ratio in dB (default 10)")
    e.add_argument("--minutes", type=float, default=10.0, help="stream length (default 10)")
    e.add_argument("--seed", type=int, default=0, help="the stream's seed (default 0)")
    e.add_argument(
        "--tolerance", type=float, default=None, help="seconds after a clip's end a report still hits it (default 0.5)"
    )
    e.add_argument(
        "--target-fa",
        type=float,
        default=2.0,
        help="false alarms per hour whose smallest threshold the figures name (default 2): the "
        "threshold to choose on development data",
    )
    e.add_argument("--save-wav", metavar="F.wav", help="also write the built stream")
    e.add_argument(
        "--shots",
        type=int,
        default=None,
        metavar="N",
        help="personalise first (issue 32): fine-tune on N shots of each word of the one --speaker (the "
        "model's recorded recipe; --fixed: the device's integer rule), build the stream from that "
        "speaker's held-out (query) clips only, and report the detector before and after",
    )
    p.set_defaults(func=run)


def parse_threshold(text, model):
    """A number, a JSON object word -> number (inline or a file), or the model's / the default one."""
    from edgetp.stream.detector import DEFAULT_THRESHOLD

    if text is None:
        return (model.recipe.get("detect") or {}).get("threshold", DEFAULT_THRESHOLD)
    try:
        return float(text)
    except ValueError:
        pass
    src = Path(text).read_text() if Path(text).is_file() else text
    try:
        val = json.loads(src)
    except json.JSONDecodeError:
        raise EdgetpError(f"--threshold takes a number or a JSON object word -> number, got {text!r}") from None
    if not isinstance(val, dict):
        raise EdgetpError(f"--threshold's JSON must be an object word -> number, got {type(val).__name__}")
    return val


class Listener:
    """A model's stream pipeline: inputs, network (float or integer), detector spec in real and device units."""

    def __init__(self, args, model=None, qm=None):
        """``model`` (a float Model) or ``qm`` (an integer QModel, --fixed): fine-tuned weights to listen with
        instead of ``args.model``'s (whose frontend and detector settings are kept)."""
        from edgetp.model import load_model
        from edgetp.stream.detector import REFRACTORY, WINDOW, DetectorSpec
        from edgetp.stream.features import stream_inputs
        from edgetp.stream.network import StreamNet

        self.model = load_model(args.model) if model is None else model
        self.inputs, self.frontend = stream_inputs(self.model)
        self.spec = DetectorSpec.make(
            self.model.labels,
            parse_threshold(args.threshold, self.model),
            WINDOW if args.window is None else args.window,
            REFRACTORY if args.refractory is None else args.refractory,
        )
        self.fixed = bool(args.fixed)
        if self.fixed:
            if qm is None:
                from firmware_gen.qmodel import qmodel_for

                qm, _ = qmodel_for(self.model)
            self.net = StreamNet(qm=qm)
            self.spec_q = self.spec.quantized(self.net.readout_bits, qm.weights[qm.readout_name])
        else:
            self.net = StreamNet(model=self.model)
        self.unit = float(1 << self.net.readout_bits)

    def listen(self, blocks):
        """(increments in readout units (frames, classes) float64, reports [(frame, word, margin)])."""
        from edgetp.stream.detector import run as run_detector
        from edgetp.stream.network import listen

        inc = listen(self.inputs, self.net, blocks)
        _, reps = run_detector(self.spec_q if self.fixed else self.spec, inc)
        words = self.spec.labels
        return inc / self.unit, [(f, words[k], float(m) / self.unit) for f, k, m in reps]


def wav_blocks(path):
    """A mono 16 kHz WAV, BLOCK_S seconds at a time (refused: not WAV, empty, another rate)."""
    from edgetp.audio.wav import TARGET_SR, probe, read_wave

    info = probe(path)
    if info.sr != TARGET_SR:
        raise EdgetpError(
            f"{path}: sample rate {info.sr} Hz; detect reads a 16000 Hz stream block by block "
            f"(convert with: sox '{path}' -r 16000 out.wav)"
        )
    if info.frames < TARGET_SR:
        raise EdgetpError(f"{path}: {info.frames} samples; detect needs at least one second")
    step = BLOCK_S * TARGET_SR
    return info, (read_wave(path, s, step, info)[0] for s in range(0, info.frames, step))


def report_rows(reports, hop_s: float = 0.01) -> list[dict]:
    return [{"time_s": round(f * hop_s, 2), "word": w, "score": round(m, 4)} for f, w, m in reports]


def run(args) -> int:
    if args.eval:
        return run_eval(args)
    if not args.wav:
        raise EdgetpError("give a WAV file to listen to (or --eval with --data-root)")
    for flag in ("data_root", "speaker", "noise", "save_wav"):
        if getattr(args, flag):
            raise EdgetpError(f"--{flag.replace('_', '-')} belongs to --eval")
    lis = Listener(args)
    info, blocks = wav_blocks(args.wav)
    inc, reports = lis.listen(blocks)
    rows = report_rows(reports)
    for r in rows:
        print(f"{r['time_s']:9.2f} s  {r['word']:<6} {r['score']:.3f}")
    print(f"{len(rows)} detections in {info.seconds:.1f} s ({'integer' if lis.fixed else 'float'} network)")
    print(frontend_line(lis.frontend))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": str(args.model),
                    "fixed": lis.fixed,
                    "wav": str(args.wav),
                    "seconds": info.seconds,
                    "frontend": lis.frontend,
                    "detector": detector_record(lis.spec),
                    "detections": rows,
                },
                indent=1,
            )
        )
    if args.plot:
        from edgetp.stream.plot import plot_scores

        plot_scores(args.plot, inc, lis.spec, reports)
    return 0


def frontend_line(fe: dict) -> str:
    return (
        f"frontend: running maximum decay {fe['decay']}, read {fe['ahead']} frames ahead; latency "
        f"{fe['latency_frames']} frames ({fe['latency_s']:g} s; times are the frames' own): {fe['why']}"
    )


def detector_record(spec) -> dict:
    from edgetp.stream.detector import KEYWORDS

    return {
        "window_frames": spec.window,
        "refractory_frames": spec.refractory,
        "thresholds": {w: spec.thresholds[spec.labels.index(w)] for w in KEYWORDS},
    }


def adapted_listener(args, lis, corpus, speakers):
    """``detect --eval --shots N``: the model fine-tuned on N shots of the one speaker (seed ``args.seed``, the
    model's recorded recipe; --fixed the device's integer rule), its listener, and the speaker's query clips."""
    from dataclasses import replace

    from edgetp.cli.finetune import recorded_recipe
    from edgetp.kws.fixed_protocol import adapt_seed_fixed
    from edgetp.kws.protocol import adapt_seed

    if not speakers or len(speakers) != 1:
        raise EdgetpError("--shots personalises to one speaker: give exactly one --speaker id")
    if args.shots < 1:
        raise EdgetpError(f"--shots must be >= 1, got {args.shots}")
    recipe = recorded_recipe(lis.model, lis.fixed)
    if lis.fixed:
        tuned, d = adapt_seed_fixed(lis.model, corpus, speakers[0], args.shots, args.seed, recipe)
        after = Listener(args, model=lis.model, qm=tuned)
    else:
        params, d = adapt_seed(lis.model, corpus, speakers[0], args.shots, args.seed, recipe)
        after = Listener(args, model=replace(lis.model, params=params))
    return after, d.split, recipe


def score(lis, wave, events, seconds, tol, target_fa, what: str = "") -> dict:
    """The detector's figures on a built stream (printed, and returned for the JSON)."""
    from edgetp.stream.evaluate import at_target, det_curve, match

    step = BLOCK_S * 16000
    inc, reports = lis.listen(wave[s : s + step] for s in range(0, len(wave), step))
    figs = match([(f * 0.01, w) for f, w, _ in reports], events, seconds, tol)
    det = det_curve(inc, lis.spec, events, seconds, tolerance=tol, points=DET_POINTS)
    o = figs["overall"]
    target = at_target(det, target_fa)
    print(
        f"{what}{seconds / 60:.1f} min stream, {o['occurrences']} keywords, {len(events) - o['occurrences']} other "
        f"words; {'integer' if lis.fixed else 'float'} network"
    )
    for w, c in figs["per_keyword"].items():
        mr = "-" if c["miss_rate"] is None else f"{100 * c['miss_rate']:.1f} %"
        print(
            f"  {w:<6} {c['occurrences']:4d} occurrences  miss {mr:>7}  false alarms {c['false_alarms']:4d} "
            f"({c['fa_per_hour']:.1f} / h)"
        )
    mr = "-" if o["miss_rate"] is None else f"{100 * o['miss_rate']:.1f} %"
    print(
        f"  all    {o['occurrences']:4d} occurrences  miss {mr:>7}  false alarms {o['false_alarms']:4d} "
        f"({o['fa_per_hour']:.1f} / h)"
    )
    if target:
        print(
            f"at <= {target_fa:g} false alarms / h: threshold {target['threshold']:.3f}, miss "
            f"{100 * target['miss_rate']:.1f} % ({target['fa_per_hour']:.1f} / h)"
        )
    return {**figs, "det": det, "at_target": target}


def run_eval(args) -> int:
    from edgetp.kws.data import check_speaker, corpus_for
    from edgetp.kws.speakers import group_indices, resolve
    from edgetp.stream.build import build_stream, load_noise
    from edgetp.stream.evaluate import TOLERANCE_S

    if args.wav:
        raise EdgetpError("--eval builds its own stream: give no WAV")
    if not args.data_root:
        raise EdgetpError("--eval needs --data-root (a GSC-layout corpus)")
    if not args.json:
        raise EdgetpError("--eval needs --json F for its figures")
    tol = TOLERANCE_S if args.tolerance is None else args.tolerance
    if not tol >= 0:
        raise EdgetpError(f"--tolerance must be >= 0, got {tol}")
    lis = Listener(args)
    corpus = corpus_for(lis.model, args.data_root)
    if args.speaker:
        speakers = resolve(lis.model, corpus, ",".join(args.speaker))
        seen = check_speaker(lis.model, corpus, speakers, args.allow_seen_speaker)
        idx = group_indices(corpus, speakers)
    else:
        speakers, idx, seen = None, corpus.select(split=args.split), {}
    after = recipe = split = None
    if args.shots is not None:
        after, split, recipe = adapted_listener(args, lis, corpus, speakers)
        idx = split.query
    noise = load_noise(args.noise) if args.noise else None
    wave, events = build_stream(corpus, idx, args.minutes, args.seed, noise, args.snr)
    if args.save_wav:
        from edgetp.audio.wav import write_wav16

        write_wav16(args.save_wav, wave)
    seconds = len(wave) / 16000
    out = {
        "model": str(args.model),
        "fixed": lis.fixed,
        "data_root": str(args.data_root),
        "speakers": speakers,
        "split": None if speakers else args.split,
        **seen,
        "noise": args.noise,
        "snr_db": args.snr if args.noise else None,
        "minutes": args.minutes,
        "seed": args.seed,
        "tolerance_s": tol,
        "events": len(events),
        "frontend": lis.frontend,
        "detector": detector_record(lis.spec),
        "target_fa_per_hour": args.target_fa,
    }
    print(frontend_line(lis.frontend))
    figs = score(lis, wave, events, seconds, tol, args.target_fa, "before personalisation: " if after else "")
    if after is None:
        out.update(figs)
    else:
        files = lambda ix: [corpus.utterances[i].path for i in ix]
        out.update(
            shots=args.shots,
            recipe=recipe.to_dict(),
            support_clips=files(split.support),
            stream_clips=files(idx),
            before=figs,
            after=score(
                after, wave, events, seconds, tol, args.target_fa, f"after {args.shots}-shot personalisation: "
            ),
        )
    Path(args.json).write_text(json.dumps(out, indent=1))
    if args.plot:
        from edgetp.stream.plot import plot_det

        plot_det(
            args.plot,
            figs["det"] if after is None else out["after"]["det"],
            (figs if after is None else out["after"])["overall"],
        )
    return 0
