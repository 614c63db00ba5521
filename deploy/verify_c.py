"""`edgetp verify-c`: the exported C, built into the firmware (etp_server on the host or on an
emulated board, deploy/boards.py), against
the integer reference bit for bit (deploy/bitexact.py), over random models or over one
model's fine-tuning run, with a summary (cases, steps, mismatches) for humans and for JSON."""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp.config import DEFAULT_LR

from deploy.bitexact import ERROR_OPS, Mismatch, verify_export
from firmware_gen.cases import build_model, build_script, device_config, random_spec
from firmware_gen.generate import render
from firmware_gen.build import build_arm, have
from firmware_gen.frontend_verify import CheckSummary
from firmware_gen.script import Script
from edgetp.fixed.device import DeviceConfig
from firmware_gen.tensors import TableDevice
from edgetp.fixed.quantize import quantize_inputs
from firmware_gen.qmodel import labels_of
from firmware_gen.script_finetune import (
    REPO_WAVS,
    check_protocol,
    features_of,
    finetune_script,
    int_features,
    wav_files,
    word_labels,
)


@dataclass
class Summary(CheckSummary):
    mode: str
    cases: int = 0  # mismatches, errors: cases
    steps: int = 0
    counted = "cases"
    lead = ("mode", "cases", "steps")

    def add(self, case: int, steps: int, mm: Mismatch | None, what: str) -> None:
        self.cases += 1
        self.steps += steps
        if mm is not None:
            if mm.op in ERROR_OPS:
                self.errors += 1
            else:
                self.mismatches += 1
            self.details.append(
                {
                    "case": case,
                    "what": what,
                    "step": mm.step,
                    "op": mm.op,
                    "tensor": mm.tensor,
                    "index": mm.index,
                    "c": mm.c_value,
                    "python": mm.ref_value,
                    "message": str(mm),
                }
            )

    def lines(self) -> list[str]:
        out = [
            f"verify-c ({self.mode}, {self.build}): {self.cases} cases, {self.steps} steps, "
            f"{self.mismatches} mismatches, {self.errors} errors in {self.seconds:.1f} s"
        ]
        every = self.extra.get("update_every")
        if isinstance(every, dict):
            out.append("  cases learning every k steps: " + ", ".join(f"k = {k}: {n}" for k, n in every.items()))
        elif every is not None:
            out.append(f"  the device learns every {every} steps")
        if self.extra.get("frozen_hidden"):
            out.append(
                f"  frozen-hidden cases (readout learns, hidden layers constant): {self.extra['frozen_hidden']}"
                + (f", {self.extra['row_scales']} with row scales" if self.extra.get("row_scales") else "")
            )
        out += [f"  {d['what']}: {d['message']}" for d in self.details[:20]]
        return out


def _case(i: int, spec, sanitize: bool, workroot: Path | None, cc: str | None, target: str = "host"):
    qm, dev = build_model(spec), device_config(spec)
    workdir = None
    if workroot is not None:
        workdir = workroot / f"case{i:04d}"
    steps, mm = verify_export(
        render(qm, dev), TableDevice(qm, dev), build_script(spec), i, sanitize, workdir, cc, target
    )
    return i, spec, steps, mm


def verify_random(
    n: int,
    seed: int = 0,
    steps: int | None = None,
    sanitize: bool = False,
    jobs: int | None = None,
    keep: Path | None = None,
    cc: str | None = None,
    specs=None,
    target: str = "host",
) -> Summary:
    """``n`` random models (firmware_gen.cases.random_spec, from ``seed``), each compiled and
    played against the reference; ``steps`` fixes the steps per sample; ``target``: host (on
    pipes) or an emulated board (cross-compiled, under QEMU, over its UART)."""
    rng = np.random.default_rng(seed)
    specs = specs or [random_spec(rng) for _ in range(n)]
    if steps is not None:
        for s in specs:
            s.steps = int(steps)
    summary = Summary("random models" if target == "host" else f"random models on {target}", sanitize=sanitize)
    t0 = time.perf_counter()
    jobs = max(1, jobs or os.cpu_count() or 1)
    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(jobs) as pool:
        for i, spec, st, mm in pool.map(
            lambda a: _case(a[0], a[1], sanitize, keep and Path(keep), cc, target), enumerate(specs)
        ):
            summary.add(i, st, mm, spec.describe())
    summary.seconds = time.perf_counter() - t0
    summary.extra["seed"] = seed
    summary.extra["target"] = target
    summary.extra["update_every"] = {
        str(k): sum(s.update_every == k for s in specs) for k in sorted({s.update_every for s in specs})
    }
    summary.extra["frozen_hidden"] = sum(bool(s.frozen_hidden) for s in specs)
    summary.extra["row_scales"] = sum(bool(s.row_scales) for s in specs)
    return summary


def model_inputs(qm, inputs=None, wav_dir=None, samples: int | None = None, seed: int = 0):
    """(int features (N, T, F), labels, description): real features from WAV files for a
    120-feature model (``wav_dir``, else the repository's tests/data/real; through the model's
    input transform ``inputs``, see ``kws.features_of``), else seeded Gaussian inputs."""
    c = qm.cfg
    if c.n_in == 120 and (wav_dir or REPO_WAVS.is_dir()):
        files = wav_files(wav_dir or REPO_WAVS)[:samples]
        xs = int_features(qm, features_of(files, inputs))
        return xs, word_labels(files, labels_of(qm)), f"{len(files)} utterances from {wav_dir or REPO_WAVS}"
    rng = np.random.default_rng(seed)
    n = samples or 4
    xs = quantize_inputs(rng.standard_normal((n, 50, c.n_in)), qm.fx, qm.xbits)
    return xs, rng.integers(0, c.n_out, n), f"{n} random sequences"


def verify_model(
    qm,
    dev: DeviceConfig,
    xs,
    ys,
    epochs: int = 3,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    frames: int | None = None,
    sanitize: bool = False,
    keep: Path | None = None,
    cc: str | None = None,
    arm: bool = False,
    what: str = "",
) -> Summary:
    """One fine-tuning run of ``qm`` on (xs, ys) on the device and the reference, every state
    compared after every step; the script is first checked to be finetune_fixed's protocol."""
    summary = Summary("model", sanitize=sanitize)
    t0 = time.perf_counter()
    script: Script = finetune_script(xs, ys, epochs, lr, seed, frames=frames)
    dev = DeviceConfig(
        dev.targets,
        dev.optimizer,
        lr,
        dev.beta_shift,
        dev.train,
        dev.clip,
        update_every=dev.update_every,
        frozen_hidden=dev.frozen_hidden,
    )
    check_protocol(qm, dev, script, xs, ys, epochs, lr, seed, frames=frames)
    summary.extra["protocol"] = "the script's weights equal edgetp.fixed.finetune.finetune_fixed's"
    export = render(qm, dev)
    with tempfile.TemporaryDirectory(prefix="etp_verify_") as tmp:
        work = Path(keep) if keep else Path(tmp)
        steps, mm = verify_export(export, TableDevice(qm, dev), script, 0, sanitize, work, cc)
        summary.add(0, steps, mm, what or qm.cfg.net_string())
        if arm:
            if not have("arm-none-eabi-gcc"):
                raise EdgetpError("--arm needs arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi)")
            summary.extra["arm_size"] = {
                k: {"text": t, "data": d, "bss": b} for k, (t, d, b) in build_arm(work).items()
            }
    summary.seconds = time.perf_counter() - t0
    summary.extra.update(
        {
            "model_hash": export.model_hash,
            "epochs": epochs,
            "lr": lr,
            "seed": seed,
            "samples": int(len(ys)),
            "update_every": dev.update_every,
        }
    )
    return summary
