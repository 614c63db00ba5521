"""`edgetp verify-c`: prove the exported C bit-exact against the integer reference.

Builds the export into the firmware for the host (etp_server, the one hil drives; gcc, C99
with every warning an error; ``--sanitize``: with AddressSanitizer and UndefinedBehaviorSanitizer),
plays the same steps on it over the serial protocol (deploy.host.Device, on pipes) and on
edgetp.fixed, and compares every state tensor after every step (deploy/verify_c.py,
docs/firmware-gen.md).
``--frontend WAV…`` does the same for the integer audio frontend: every intermediate of
every frame against edgetp.audio.frontend_q (firmware_gen/frontend_verify.py).
"""

from __future__ import annotations

import json
import sys

from edgetp.cli._options import command
from edgetp.errors import EdgetpError


def register(subparsers) -> None:
    from firmware_gen.options import add_device_options

    p = command(
        subparsers,
        "verify-c",
        """prove the exported C bit-exact against the integer reference

        Compile the generated C on the host and compare every state array after every step with the integer reference
        (docs/firmware-gen.md).
        """,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="NAME|PATH", help="a model: its fine-tuning run on real features")
    what.add_argument("--random-models", type=int, metavar="N", help="N random models (shapes, formats, edge values)")
    what.add_argument(
        "--frontend",
        nargs="*",
        metavar="WAV",
        help="the integer audio frontend's C against its Python twin on these WAV files (or folders) "
        "and --random-pcm signals: every intermediate of every frame",
    )
    what.add_argument(
        "--detector",
        type=int,
        metavar="N",
        help="N random keyword detectors (etp_det_step against step_q: every state, every frame)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random models / of the fine-tuning run")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="T",
        help="time steps per sample (default: random 1-8 for random models, every frame for a model; "
        "--detector: frames per stream, 600)",
    )
    from deploy.boards import EMULATED

    p.add_argument(
        "--target",
        default="host",
        choices=("host", *EMULATED),
        help="where the random models' (or detectors') firmware runs: host (native, on pipes; default) or an emulated "
        "board under QEMU over its UART (qemu = Cortex-M4, qemu-m7, qemu-m33, qemu-rv32)",
    )
    p.add_argument("--sanitize", action="store_true", help="run the C built with ASan and UBSan (-O1 -g)")
    p.add_argument("--arm", action="store_true", help="also compile for Cortex-M4 and print the object sizes (--model)")
    p.add_argument("--jobs", type=int, default=None, help="parallel cases (default: CPU count)")
    p.add_argument("--cc", default=None, help="host C compiler (default gcc, else clang)")
    p.add_argument("--keep", metavar="DIR", help="keep the generated sources and binaries here")
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the summary as JSON to PATH (or to stdout without PATH)",
    )
    fg = p.add_argument_group("audio frontend (--frontend)")
    fg.add_argument(
        "--random-pcm",
        type=int,
        default=0,
        metavar="N",
        help="also N random signals (silence, full-scale squares, clipping, DC, noise, short inputs)",
    )
    fg.add_argument(
        "--norm-model",
        default="kws-mcu",
        metavar="NAME|PATH",
        help="the model whose input stage (norm_scale, fx) ends the frontend (default kws-mcu)",
    )
    g = p.add_argument_group("fine-tuning run (--model)")
    g.add_argument(
        "--wav", metavar="DIR", help="WAV files for the features (default: the repository's tests/data/real)"
    )
    g.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (default 3)")
    g.add_argument("--samples", type=int, default=None, help="use at most this many utterances")
    add_device_options(g)
    p.set_defaults(func=run)


def run(args) -> int:
    from firmware_gen.build import default_cc, have

    args.cc = args.cc or default_cc()
    if args.cc is None or not have(args.cc):
        raise EdgetpError(f"no C compiler {args.cc or '(gcc or clang)'} on PATH (apt-get install gcc, or ./setup.sh)")
    if args.target != "host" and args.random_models is None and args.detector is None:
        raise EdgetpError(
            "--target runs the random models (--random-models N) or detectors (--detector N) on a board; "
            "--model and --frontend run on the host"
        )
    if args.target != "host" and args.sanitize:
        raise EdgetpError("--sanitize is for --target host (the sanitizers run on the host)")
    if args.frontend is not None:
        return _frontend(args)
    if args.detector is not None:
        from deploy.verify_detect import verify_detectors

        if args.detector < 1:
            raise EdgetpError("--detector must be at least 1")
        if args.steps is not None and args.steps < 1:
            raise EdgetpError("--steps must be at least 1")
        summary = verify_detectors(
            args.detector,
            args.seed,
            args.steps or 600,
            args.target,
            args.sanitize,
            None if args.target != "host" else args.cc,
            args.keep,
        )
        lines = summary.lines()
    elif args.random_models is not None:
        from deploy.verify_c import verify_random

        if args.random_models < 1:
            raise EdgetpError("--random-models must be at least 1")
        summary = verify_random(
            args.random_models,
            args.seed,
            args.steps,
            args.sanitize,
            args.jobs,
            args.keep,
            None if args.target != "host" else args.cc,
            target=args.target,
        )
        lines = summary.lines()
    else:
        from edgetp.model import load_model
        from firmware_gen.options import device_from_args
        from deploy.verify_c import model_inputs, verify_model

        model = load_model(args.model)
        qm, dev, notes = device_from_args(model, args)
        from edgetp.kws.protocol import model_norm

        inputs = model_norm(model) if model.norm_scale is not None else None
        xs, ys, source = model_inputs(qm, inputs, args.wav, args.samples, args.seed)
        summary = verify_model(
            qm,
            dev,
            xs,
            ys,
            args.epochs,
            dev.lr,
            args.seed,
            args.steps,
            args.sanitize,
            args.keep,
            args.cc,
            args.arm,
            f"{args.model} ({qm.cfg.net_string()})",
        )
        summary.extra["inputs"] = source
        lines = (
            [f"note: {n}" for n in notes]
            + [f"inputs: {source}; {args.epochs} epochs of fine-tuning, then inference; {summary.extra['protocol']}"]
            + summary.lines()
        )
        for obj, sz in summary.extra.get("arm_size", {}).items():
            lines.append(f"  cortex-m4 {obj:<16s} text {sz['text']:>7,d}  data {sz['data']:>6,d}  bss {sz['bss']:>7,d}")
    if args.json == "-":
        print(json.dumps(summary.to_json(), indent=1))
    else:
        print("\n".join(lines))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary.to_json(), f, indent=1)
    sys.stdout.flush()
    return 0 if summary.ok else 1


def _frontend_inputs(args):
    from pathlib import Path

    import numpy as np

    from edgetp.audio import frontend_q

    files = []
    for a in args.frontend:
        p = Path(a)
        if p.is_dir():
            found = sorted(p.rglob("*.wav"))
            if not found:
                raise EdgetpError(f"{p}: folder holds no .wav files")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise EdgetpError(f"{p}: no such WAV file or folder")
    if not files and args.random_pcm < 1:
        raise EdgetpError("give WAV files or --random-pcm N")
    if args.random_pcm < 0:
        raise EdgetpError("--random-pcm must be >= 0")
    out = [(str(f), frontend_q.pcm16(frontend_q.load_pcm16(f))) for f in files]
    from firmware_gen.frontend_verify import random_pcm

    rng = np.random.default_rng(args.seed)
    for i in range(args.random_pcm):
        kind, x = random_pcm(rng)
        out.append((f"random #{i} ({kind}, {x.size} samples)", x))
    return out


def _frontend(args) -> int:
    from edgetp.audio.frontend_q import InputNorm
    from edgetp.model import load_model
    from deploy.verify_frontend import verify_frontend
    from firmware_gen.options import device_from_args

    inputs = _frontend_inputs(args)
    model = load_model(args.norm_model)
    qm, _dev, notes = device_from_args(model, args)
    norm = InputNorm.for_model(model, qm)
    s = verify_frontend(qm, norm, inputs, args.sanitize, args.cc, args.seed, args.keep)
    out = s.to_json()
    out["inputs"] = len(inputs)
    out["norm_model"] = args.norm_model
    if args.json == "-":
        print(json.dumps(out, indent=1))
    else:
        print(
            f"verify-c (audio frontend, {s.build}): {s.utterances} utterances, {s.frames} frames, "
            f"{s.mismatches} mismatches, {s.errors} errors in {s.seconds:.1f} s"
        )
        for d in s.details[:20]:
            print(f"  {d['input']}: {d['message']}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    sys.stdout.flush()
    return 0 if s.ok else 1
