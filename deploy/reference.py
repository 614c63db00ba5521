"""The integer TP reference as a HIL :class:`deploy.hil.Reference`, and the export step.

:class:`IntReference` wraps :class:`firmware_gen.tensors.TableDevice` (the integer
reference of edgetp.fixed driven exactly like the C API, batch 1, one frame per call):
a training sample is ``reset`` then one ``train(x, label)`` per frame, an inference
sample ``reset`` then ``infer(x)`` per frame, and ``digest()`` is the twin of
``etp_state_digest()``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.device import default_device
from edgetp.fixed.qconfig import from_float
from edgetp.fixed.quantize import quantize_inputs
from edgetp.tp.config import NetConfig, init_params
from firmware_gen.generate import render
from firmware_gen.qmodel import qmodel_hash
from firmware_gen.tensors import TableDevice


class IntReference:
    def __init__(self, qm, dev_cfg=None):
        self.qm = qm
        self.cfg = dev_cfg or default_device(qm)
        self.dev = TableDevice(qm, self.cfg)
        self.n_in, self.n_out = qm.cfg.n_in, qm.cfg.n_out
        self.model_hash = qmodel_hash(qm)

    def init(self, seed: int) -> None:
        self.dev.init(seed)

    def set_lr(self, m: int, e: int) -> None:
        self.dev.set_lr(m, e)

    def train_sample(self, xs, label: int) -> None:
        self.dev.reset()
        for x in xs:
            self.dev.train(x, label)

    def infer_sample(self, xs) -> int:
        self.dev.reset()
        for x in xs:
            self.dev.infer(x)
        return self.dev.predict()

    def digest(self) -> int:
        return self.dev.digest()

    def tensors(self) -> list:
        return self.dev.tensors()


def export_c(qm, out_dir, dev_cfg=None, frontend=None) -> Path:
    """Write the generated C of ``qm`` (firmware_gen) into ``out_dir``; returns it. ``frontend``
    (an edgetp.audio.frontend_q.InputNorm) adds the integer audio frontend."""
    out = Path(out_dir)
    render(qm, dev_cfg or default_device(qm), frontend=frontend).write(out)
    if not (out / "etp_model.h").is_file():
        raise EdgetpError(f"the C export into {out} wrote no etp_model.h")
    return out


def tiny_qmodel(n_in=12, hidden=(10,), n_out=4, recurrent=True, seed=0, wbits=16, hbits=None, frozen_hidden=False):
    """A small random integer model (tests, smoke runs); ``frozen_hidden``: its hidden layers
    constant at ``hbits``, the readout learning (firmware_gen.layout)."""
    cfg = NetConfig(n_in, tuple(hidden), n_out, recurrent=recurrent)
    return from_float(
        cfg,
        init_params(cfg, seed),
        12,
        wbits,
        labels=[f"c{k}" for k in range(n_out)],
        hbits=hbits,
        frozen_hidden=frozen_hidden,
    )


def int_features(qm, xs) -> np.ndarray:
    """Float features in the model's input format (round half up, saturated)."""
    return quantize_inputs(np.asarray(xs), qm.fx, qm.xbits)
