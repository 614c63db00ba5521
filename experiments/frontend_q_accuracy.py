"""Does the integer frontend cost accuracy? Pretrain and fine-tune the same net on float
features and on the integer twin's features (same seeds), compare the query accuracy.

    python experiments/frontend_q_accuracy.py OUT_DIR [--epochs 10] [--seeds 3] [--shots 5]

Integer features of every utterance of the default offline corpus are computed once with
edgetp.audio.frontend_q (dequantised to the float scale, as `edgetp data features
--frontend fixed` writes them) and cached in OUT_DIR; ``edgetp.kws.data.features`` is then
pointed at them, so `edgetp pretrain --kws` and `edgetp finetune --kws` run unchanged on
either feature path. Pretraining is kws-mcu's recipe (models/rebuild.sh) with fewer epochs;
fine-tuning is the device's integer rule (`--fixed`, colnorm 1e-4, batch 1, 3 epochs) on the
model's recorded held-out speaker. Prints one JSON summary line per path and the difference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def int_features(corpus, out: Path) -> np.ndarray:
    from edgetp.audio import frontend_q as fq

    path = out / "int_features.npy"
    if path.is_file():
        a = np.load(path, mmap_mode="r")
        if a.shape == (len(corpus.utterances), 101, 120):
            return a
    t0 = time.perf_counter()
    a = np.zeros((len(corpus.utterances), 101, 120), np.float32)
    for i in range(len(corpus.utterances)):
        a[i] = fq.features_q(fq.pcm16(fq.pcm16_samples(corpus.load(i))))
    np.save(path, a)
    print(f"integer features of {len(a)} utterances in {time.perf_counter() - t0:.0f} s", flush=True)
    return a


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--shots", default="5")
    ap.add_argument("--paths", default="float,fixed")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    import edgetp.kws.data as kd
    from edgetp.cli import main as cli

    corpus = kd.open_corpus(None)
    ints = int_features(corpus, out)
    float_features = kd.features
    summary = {}
    for path in a.paths.split(","):
        kd.features = (
            float_features if path == "float" else (lambda c, idx, cache=None, source=None: ints[np.asarray(idx)])
        )
        model = out / f"mcu-{path}-e{a.epochs}.npz"
        if not model.is_file():
            rc = cli(
                [
                    "pretrain",
                    "--kws",
                    "--net",
                    "120-64r-36",
                    "--reset",
                    "hard",
                    "--epochs",
                    str(a.epochs),
                    "--lr",
                    "1e-3",
                    "--batch",
                    "32",
                    "--targets",
                    "batch",
                    "--shift",
                    "8",
                    "--noise",
                    "0.1",
                    "--seed",
                    "0",
                    "--ft",
                    "optimizer=colnorm",
                    "--out",
                    str(model),
                ]
            )
            if rc:
                return rc
        res = out / f"ft-{path}-e{a.epochs}-{a.shots}.json"
        rc = cli(
            [
                "finetune",
                "--kws",
                "--model",
                str(model),
                "--shots",
                a.shots,
                "--seeds",
                str(a.seeds),
                "--quiet",
                "--set",
                "train=all",
                "--set",
                "targets=classes",
                "--set",
                "batch=1",
                "--set",
                "lr=1e-4",
                "--fixed",
                "--set",
                "baseline=false",
                "--json",
                str(res),
            ]
        )
        if rc:
            return rc
        summary[path] = json.loads(res.read_text())
    kd.features = float_features
    print(
        json.dumps(
            {p: {k: v for k, v in s.items() if not isinstance(v, (list, dict))} for p, s in summary.items()}, indent=1
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
