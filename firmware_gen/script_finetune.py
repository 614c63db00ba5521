"""verify-c's fine-tuning run as a script (firmware_gen.script) on real features.

:func:`finetune_script` replays ``edgetp.fixed.finetune.finetune_fixed`` (batch 1) as a
device would run it: ``etp_init(seed)``, per epoch the learning-rate code of the cosine
schedule, per support sample (seeded permutation) a reset and one ``etp_train_step``
per frame; then one inference pass over every sample. :func:`check_protocol` proves
that the script is the library's protocol: the weights it leaves equal
``finetune_fixed``'s exactly.

Features come from WAV files through the float frontend (``edgetp.audio.frontend``),
normalised with the model's ``norm_scale`` (or fitted on the files), quantized to the
integer model's input format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.device import DeviceConfig, RefDevice
from edgetp.fixed.finetune import finetune_fixed
from edgetp.fixed.qconfig import QModel
from edgetp.fixed.quantize import quantize_inputs
from edgetp.fixed.update_q import lr_code
from edgetp.tp.config import DEFAULT_LR
from edgetp.tp.schedule import finetune_epochs

from firmware_gen.script import Script, play
from edgetp.audio.frontend import NormConstants, features

REPO_WAVS = Path(__file__).resolve().parent.parent / "tests" / "data" / "real"


def wav_files(folder) -> list[Path]:
    files = sorted(Path(folder).rglob("*.wav"))
    if not files:
        raise EdgetpError(f"no .wav files under {folder}")
    return files


def features_of(files, inputs=None) -> np.ndarray:
    """(N, 101, 120) float32 features of WAV files as a model reads them: ``inputs`` is the model's
    input transform (``edgetp.kws.protocol.model_norm``: its log gain, then its normalisation);
    None normalises the paper's features per feature with constants fitted on these files."""
    import soundfile as sf

    feats = []
    for f in files:
        wave, sr = sf.read(str(f), dtype="int16", always_2d=True)
        feats.append(features(wave[:, 0], sr))
    xs = np.stack(feats)
    return np.asarray((inputs or NormConstants.fit(xs)).apply(xs), dtype=np.float32)


def word_labels(files, labels: list[str]) -> np.ndarray:
    """Class of each file: the model label contained in its name or folder (``felix_yes.wav``,
    ``yes/...``), else ``_unknown_`` if the model has it, else round-robin."""
    out = []
    for i, f in enumerate(files):
        words = set(f.stem.replace("-", "_").split("_")) | {f.parent.name}
        hit = [k for k, w in enumerate(labels) if w in words]
        out.append(hit[0] if hit else (labels.index("_unknown_") if "_unknown_" in labels else i % len(labels)))
    return np.asarray(out, dtype=np.int64)


def finetune_script(
    xs: np.ndarray,
    ys: np.ndarray,
    epochs: int = 3,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    schedule: str = "cosine",
    frames: int | None = None,
    evaluate: bool = True,
) -> Script:
    """The device's fine-tuning run (finetune_fixed at batch 1) and an inference pass."""
    xs = xs[:, :frames] if frames else xs
    ops = [("init", seed)]
    for ep in finetune_epochs(len(ys), epochs, seed, 1, lr, schedule=schedule):
        ops.append(("lr", *lr_code(ep.lr)))
        for (i,) in ep.batches:
            ops.append(("reset",))
            ops += [("train", x, int(ys[i])) for x in xs[i]]
            ops.append(("end_sample",))
    if evaluate:
        for i in range(len(ys)):
            ops.append(("reset",))
            ops += [("infer", x) for x in xs[i]]
            ops.append(("end_sample",))
    return Script(ops)


def check_protocol(
    qm: QModel, dev: DeviceConfig, script: Script, xs, ys, epochs, lr, seed, schedule="cosine", frames=None
) -> RefDevice:
    """Replay ``script`` on RefDevice and compare its weights with finetune_fixed's."""
    ref = RefDevice(qm, dev)
    for op in script.ops:
        if op[0] != "end_sample":
            play(ref, op)
    xs = xs[:, :frames] if frames else xs
    lib = finetune_fixed(
        qm,
        xs,
        ys,
        epochs=epochs,
        lr=lr,
        optimizer=dev.optimizer,
        targets=dev.targets,
        seed=seed,
        schedule=schedule,
        beta_shift=dev.beta_shift,
        train=dev.train,
        clip=dev.clip,
        update_every=dev.update_every,
    )
    for n in qm.trainable_names:
        if not np.array_equal(lib.weights[n], ref.qm.weights[n]):
            raise EdgetpError(f"the device script is not finetune_fixed's protocol: {n} differs")
    return ref


def int_features(qm: QModel, xs_float: np.ndarray) -> np.ndarray:
    return quantize_inputs(xs_float, qm.fx, qm.xbits)
