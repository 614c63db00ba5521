"""The bit-exact harness: play one script on the compiled C and on the integer reference,
compare every tensor after every step.

:func:`run_script` plays a :class:`Script` on a :class:`~firmware_gen.cdevice.CDevice`
and on :class:`~firmware_gen.tensors.RefDevice` (the integer reference) and compares
every tensor of the table after every step, the prediction and the digest after every
sample; the first difference is reported with its step, tensor and index.
:func:`verify_export` writes, compiles (firmware_gen.build) and plays an export.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError

from firmware_gen.build import SAN_ENV, build_host
from firmware_gen.cdevice import CDevice, CDeviceError, split_dump
from firmware_gen.generate import Export
from firmware_gen.tensors import RefDevice, tensor_bytes

ERROR_OPS = ("compile", "run", "exit")   # the C program failed, rather than computed something else


@dataclass
class Mismatch:
    case: int
    step: int
    op: str
    tensor: str
    index: int
    c_value: int
    ref_value: int
    detail: str = ""
    differing: tuple = ()      # every tensor that differs at that step, in table order

    def __str__(self) -> str:
        if self.tensor:
            also = f"; differing tensors: {', '.join(self.differing)}" if len(self.differing) > 1 else ""
            return (f"case {self.case}: first difference after step {self.step} ({self.op}): "
                    f"{self.tensor}[{self.index}] C {self.c_value} != Python {self.ref_value}{self.detail}{also}")
        return f"case {self.case}: step {self.step} ({self.op}): {self.detail}"


def first_difference(meta, ref, blob: bytes):
    """(tensor, flat index, C value, reference value, all differing tensors) of the first
    difference in table order, or None."""
    if [(n, d.itemsize, c) for n, d, _w, c in meta] != [(n, a.dtype.itemsize, a.size) for n, a in ref]:
        return "<table>", -1, 0, 0, (f"C {[m[0] for m in meta]}", f"Python {[n for n, _a in ref]}")
    first, names = None, []
    for (name, c), (_n, r) in zip(split_dump(meta, blob), ref):
        bad = np.flatnonzero(c != r)
        if bad.size:
            names.append(name)
            if first is None:
                i = int(bad[0])
                first = (name, i, int(c[i]), int(r[i]))
    return None if first is None else (*first, tuple(names))


@dataclass
class Script:
    """What to do on both devices: ``ops`` of ("init", seed), ("reset",), ("train", x, label),
    ("infer", x), ("lr", m, e), ("opt", kind, beta_shift, train, clip), ("end_sample",)."""

    ops: list = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(1 for o in self.ops if o[0] in ("train", "infer"))


def play(dev, op) -> int:
    """Apply one script operation (not "end_sample") to a CDevice or a RefDevice; returns the
    C status (0 for the reference)."""
    fn = {"init": dev.init, "reset": dev.reset, "train": dev.train, "infer": dev.infer, "lr": dev.set_lr,
          "opt": dev.set_optimizer}.get(op[0])
    if fn is None:
        raise ValueError(f"unknown script op {op[0]!r}")
    return fn(*op[1:]) or 0


def run_script(cdev: CDevice, ref: RefDevice, script: Script, case: int = 0, shapes: dict | None = None,
               compare_every_step: bool = True):
    """Play ``script`` on both; returns (steps done, Mismatch or None)."""
    steps = 0
    shapes = shapes or {}
    for op in script.ops:
        kind = op[0]
        if kind == "end_sample":
            p, d = cdev.predict(), cdev.digest()
            if p != ref.predict() or d != ref.digest():
                return steps, Mismatch(case, steps, "end of sample", "", -1, 0, 0,
                                       f"predict C {p} / Python {ref.predict()}, digest C {d:08x} / "
                                       f"Python {ref.digest():08x}")
            continue
        got = play(cdev, op)
        play(ref, op)
        if got != 0:
            return steps, Mismatch(case, steps, kind, "", -1, got, 0, f"C returned status {got}")
        if kind in ("train", "infer"):
            steps += 1
            if not compare_every_step:
                continue
        ref_t = ref.tensors()
        blob = cdev.dump()
        if blob != tensor_bytes(ref_t):
            diff = first_difference(cdev.meta, ref_t, blob)
            if diff is None:
                diff = ("<bytes>", -1, 0, 0, ())
            name, i, cv, rv, names = diff
            where = ""
            if name in shapes and i >= 0:
                where = f" (element {tuple(int(v) for v in np.unravel_index(i, shapes[name]))} of {shapes[name]})"
            return steps, Mismatch(case, steps, kind + (f" label {op[2]}" if kind == "train" else ""), name, i, cv, rv,
                                   where, names)
    return steps, None


def verify_export(export: Export, ref: RefDevice, script: Script, case: int = 0, sanitize: bool = False,
                  workdir: Path | None = None, cc: str | None = None):
    """Write ``export``, compile it, play ``script``; returns (steps, Mismatch or None)."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="etp_verify_")
        workdir = Path(tmp.name)
    try:
        export.write(workdir)
        try:
            exe = build_host(workdir, sanitize=sanitize, cc=cc)
        except EdgetpError as exc:
            return 0, Mismatch(case, 0, "compile", "", -1, 0, 0, str(exc))
        qm = export.layout.qm
        cdev = CDevice(exe, qm.cfg.n_in, qm.xbits, SAN_ENV if sanitize else None)
        shapes = {it.name: it.shape for it in export.layout.table()}
        try:
            if cdev.model_hash != export.model_hash:
                return 0, Mismatch(case, 0, "meta", "", -1, 0, 0, "the C model hash differs")
            steps, mm = run_script(cdev, ref, script, case, shapes)
        except CDeviceError as exc:
            return 0, Mismatch(case, -1, "run", "", -1, 0, 0, str(exc))
        try:
            cdev.close()
        except CDeviceError as exc:
            return steps, mm or Mismatch(case, steps, "exit", "", -1, 0, 0, str(exc))
        return steps, mm
    finally:
        if tmp is not None:
            tmp.cleanup()

