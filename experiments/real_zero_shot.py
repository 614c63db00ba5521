"""Zero-shot top-1 of keyword spotters on the real choose speakers (development figures, docs/data.md "Real speech").

An experiment, not part of the installed package (run from the repository root):

    edgetp data real-dev DEV --real ../shared/audio/gsc-real-dev
    python3 experiments/real_zero_shot.py --data-root DEV --model kws-paper --model M.npz [--fixed] --json OUT.json

Scores every clip of the view's testing list (the choose part: real speakers no model of the real-mix corpus
trained on) by the readout at the last step, float or (``--fixed``) the integer network the device runs; all
words, the ten core words, and per word.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgetp.data.gsc import load_corpus
from edgetp.data.real import DEV_INFO
from edgetp.errors import EdgetpError
from edgetp.kws.real_dev import score  # the model cards' zero-shot figure (edgetp real-dev), one definition
from edgetp.model import load_model
from edgetp.threads import single_threaded_blas


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True, help="a view made by `edgetp data real-dev`")
    ap.add_argument("--model", action="append", required=True, help="shipped model name or model file (repeatable)")
    ap.add_argument("--fixed", action="store_true", help="also score the integer network the device runs")
    ap.add_argument("--json", required=True, help="results file")
    args = ap.parse_args(argv)
    root = Path(args.data_root)
    try:
        info = json.loads((root / DEV_INFO).read_text())
    except (OSError, ValueError):
        raise SystemExit(f"{root}: not a view made by `edgetp data real-dev` (no {DEV_INFO})") from None
    corpus = load_corpus(root)
    idx = corpus.select(split="testing")
    out = {
        "what": "zero-shot top-1 on the real choose speakers (development figures)",
        "real": info["params"]["real"],
        "choose_speakers": info["speakers"]["choose"],
        "models": {},
    }
    with single_threaded_blas():
        for name in args.model:
            model = load_model(name)
            row = {"hash": model.hash(), "float": score(model, corpus, idx, False)}
            if args.fixed:
                try:
                    row["fixed"] = score(model, corpus, idx, True)
                except EdgetpError as exc:  # a model without a device quantization
                    row["fixed"] = str(exc)
            out["models"][Path(name).stem if name.endswith(".npz") else name] = row  # a file by its name, not its path
            f = row["float"]
            print(
                f"{name}: {f['top1']:.1f} % all ({f['clips']} clips), {f['core_top1']:.1f} % core ten"
                + (
                    f"; fixed {row['fixed']['top1']:.1f} / {row['fixed']['core_top1']:.1f} %"
                    if isinstance(row.get("fixed"), dict)
                    else ""
                ),
                flush=True,
            )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
