"""`edgetp verify-c`: prove the exported C bit-exact against the integer reference.

Compiles the export on the host (gcc, C99 with every warning an error; ``--sanitize``:
with AddressSanitizer and UndefinedBehaviorSanitizer), plays the same steps on it and on
edgetp.fixed, and compares every state tensor after every step (docs/firmware-gen.md).
"""
from __future__ import annotations

import json
import sys

from edgetp.errors import EdgetpError


def register(subparsers) -> None:
    from firmware_gen.options import add_device_options
    p = subparsers.add_parser("verify-c", help="prove the exported C bit-exact against the integer reference",
                              description="Compile the generated C on the host and compare every state array "
                                          "after every step with the integer reference (docs/firmware-gen.md).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="NAME|PATH", help="a model: its fine-tuning run on real features")
    what.add_argument("--random-models", type=int, metavar="N", help="N random models (shapes, formats, edge values)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random models / of the fine-tuning run")
    p.add_argument("--steps", type=int, default=None, metavar="T",
                   help="time steps per sample (default: random 1-8 for random models, every frame for a model)")
    p.add_argument("--sanitize", action="store_true", help="run the C built with ASan and UBSan (-O1 -g)")
    p.add_argument("--arm", action="store_true", help="also compile for Cortex-M4 and print the object sizes (--model)")
    p.add_argument("--jobs", type=int, default=None, help="parallel cases (default: CPU count)")
    p.add_argument("--cc", default=None, help="host C compiler (default gcc, else clang)")
    p.add_argument("--keep", metavar="DIR", help="keep the generated sources and binaries here")
    p.add_argument("--json", nargs="?", const="-", metavar="PATH",
                   help="write the summary as JSON to PATH (or to stdout without PATH)")
    g = p.add_argument_group("fine-tuning run (--model)")
    g.add_argument("--wav", metavar="DIR", help="WAV files for the features (default: the repository's tests/data/real)")
    g.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (default 3)")
    g.add_argument("--samples", type=int, default=None, help="use at most this many utterances")
    add_device_options(g)
    p.set_defaults(func=run)


def run(args) -> int:
    from firmware_gen.build import default_cc, have
    args.cc = args.cc or default_cc()
    if args.cc is None or not have(args.cc):
        raise EdgetpError(f"no C compiler {args.cc or '(gcc or clang)'} on PATH (apt-get install gcc, or ./setup.sh)")
    if args.random_models is not None:
        from firmware_gen.verify import verify_random
        if args.random_models < 1:
            raise EdgetpError("--random-models must be at least 1")
        summary = verify_random(args.random_models, args.seed, args.steps, args.sanitize, args.jobs, args.keep,
                                args.cc)
        lines = summary.lines()
    else:
        from edgetp.model import load_model
        from firmware_gen.options import device_from_args
        from firmware_gen.verify import model_inputs, verify_model
        model = load_model(args.model)
        qm, dev, notes = device_from_args(model, args)
        xs, ys, source = model_inputs(qm, model.norm_scale, args.wav, args.samples, args.seed)
        summary = verify_model(qm, dev, xs, ys, args.epochs, args.lr, args.seed, args.steps, args.sanitize, args.keep,
                               args.cc, args.arm, f"{args.model} ({qm.cfg.net_string()})")
        summary.extra["inputs"] = source
        lines = [f"note: {n}" for n in notes] + [f"inputs: {source}; {args.epochs} epochs of fine-tuning, then "
                                                  f"inference; {summary.extra['protocol']}"] + summary.lines()
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
