"""The bit-exact harness: compile an export on the host, drive it, compare every tensor.

:func:`build_host` compiles the exported C (``-std=c99 -Wall -Wextra -Werror -pedantic``,
optionally with AddressSanitizer and UndefinedBehaviorSanitizer) together with the
runtime's ``etp_harness.c``, a main that serves the C API over stdin/stdout.
:class:`CDevice` talks to that program; :func:`run_script` plays the same script on it
and on :class:`~firmware_gen.tensors.RefDevice` (the integer reference) and compares
every tensor of the table after every step, the prediction and the digest after every
sample. The first difference is reported with its step, tensor and index.
:func:`build_arm` compiles the same sources for Cortex-M4 and reads their sizes.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.update_q import KINDS

from firmware_gen.generate import Export
from firmware_gen.layout import DTYPES
from firmware_gen.runtime import HARNESS, RUNTIME_DIR, SOURCES
from firmware_gen.tensors import RefDevice, tensor_bytes

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wstrict-prototypes",
          "-Wmissing-prototypes"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
ARM = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-ffunction-sections",
       "-fdata-sections"]
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87"}
_CODES = {v[0]: np.dtype(v[2]) for v in DTYPES.values()}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def _run(cmd, cwd=None) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise EdgetpError(f"compiling failed: {' '.join(map(str, cmd))}\n{r.stderr.strip()}")


def sources(export_dir: Path) -> list[Path]:
    return [export_dir / "etp_model.c", *(export_dir / s for s in SOURCES)]


def build_host(export_dir, out: Path | None = None, sanitize: bool = False, cc: str = "gcc",
               opt: str = "-O2") -> Path:
    """Compile the export plus the harness main; returns the executable."""
    export_dir = Path(export_dir)
    if not have(cc):
        raise EdgetpError(f"no C compiler {cc!r} on PATH (apt-get install gcc)")
    out = Path(out or export_dir / ("harness_san" if sanitize else "harness"))
    flags = STRICT + (SANITIZE + ["-O1"] if sanitize else [opt])
    _run([cc, *flags, "-I", str(export_dir), *map(str, sources(export_dir)), str(RUNTIME_DIR / HARNESS),
          "-o", str(out)])
    return out


def build_arm(export_dir, cc: str = "arm-none-eabi-gcc", opt: str = "-O2") -> dict:
    """Compile every source for Cortex-M4 (objects only) and return {object: (text, data, bss)}."""
    export_dir = Path(export_dir)
    if not have(cc):
        raise EdgetpError(f"no {cc} on PATH (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    objdir = export_dir / "arm"
    objdir.mkdir(exist_ok=True)
    objs = []
    for src in sources(export_dir):
        obj = objdir / (src.stem + ".o")
        _run([cc, *STRICT, *ARM, opt, "-I", str(export_dir), "-c", str(src), "-o", str(obj)])
        objs.append(obj)
    size = cc.replace("gcc", "size")
    r = subprocess.run([size, *map(str, objs)], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines()[1:]:
        f = line.split()
        out[Path(f[5]).name] = (int(f[0]), int(f[1]), int(f[2]))
    return out


class CDeviceError(EdgetpError):
    """The C program died (a sanitizer report, a crash) or broke the protocol."""


class CDevice:
    """The compiled export behind etp_harness.c, with RefDevice's methods."""

    def __init__(self, exe, n_in: int, xbits: int, env: dict | None = None):
        self.n_in, self.xdtype = n_in, np.dtype(np.int8 if xbits == 8 else np.int16).newbyteorder("<")
        self.p = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=dict(os.environ, **(env or {})))
        self.meta = self._meta()

    def _send(self, data: bytes) -> None:
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except BrokenPipeError:
            self._died()

    def _read(self, n: int) -> bytes:
        b = self.p.stdout.read(n) if n else b""
        if len(b) != n:
            self._died()
        return b

    def _died(self):
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
        err = self.p.stderr.read().decode(errors="replace")
        raise CDeviceError(f"the C program stopped (exit status {self.p.returncode}):\n{err[-4000:]}")

    def _status(self, cmd: bytes) -> int:
        self._send(cmd)
        return self._read(1)[0]

    def _meta(self):
        if self._status(b"M") != 0:
            raise CDeviceError("bad reply to M")
        n = struct.unpack("<I", self._read(4))[0]
        out = []
        for _ in range(n):
            name = self._read(self._read(1)[0]).decode()
            dtype, writable = self._read(2)
            count = struct.unpack("<I", self._read(4))[0]
            out.append((name, _CODES[dtype].newbyteorder("<"), bool(writable), count))
        self.model_hash = self._read(64).decode()
        self.dump_size = sum(d.itemsize * c for _n, d, _w, c in out)
        return out

    def init(self, seed: int) -> int:
        return self._status(b"I" + struct.pack("<I", seed & 0xFFFFFFFF))

    def reset(self) -> int:
        return self._status(b"Z")

    def _x(self, x) -> bytes:
        x = np.asarray(x)
        if x.shape != (self.n_in,):
            raise EdgetpError(f"one frame has {self.n_in} features, got {x.shape}")
        return x.astype(self.xdtype).tobytes()

    def infer(self, x) -> int:
        return self._status(b"F" + self._x(x))

    def train(self, x, label: int) -> int:
        return self._status(b"T" + struct.pack("<H", label & 0xFFFF) + self._x(x))

    def predict(self) -> int:
        self._status(b"P")
        return struct.unpack("<H", self._read(2))[0]

    def digest(self) -> int:
        self._status(b"D")
        return struct.unpack("<I", self._read(4))[0]

    def dump(self) -> bytes:
        self._status(b"A")
        return self._read(self.dump_size)

    def tensors(self) -> list[tuple[str, np.ndarray]]:
        return split_dump(self.meta, self.dump())

    def set_lr(self, m: int, e: int) -> int:
        return self._status(b"L" + struct.pack("<Bh", m, e))

    def set_optimizer(self, kind: str, beta: int, train: str) -> int:
        return self._status(b"O" + bytes([KINDS.index(kind), beta, int(train == "all")]))

    def write(self, index: int, data: bytes) -> int:
        return self._status(b"W" + struct.pack("<I", index) + data)

    def close(self) -> str:
        """Stop the program; returns what it wrote on stderr (sanitizer reports)."""
        if self.p.poll() is None:
            try:
                self.p.stdin.write(b"Q")
                self.p.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        err = self.p.stderr.read().decode(errors="replace")
        self.p.stdout.close()
        self.p.stderr.close()
        if self.p.returncode != 0:
            raise CDeviceError(f"the C program exited with status {self.p.returncode}:\n{err[-4000:]}")
        return err


def split_dump(meta, blob: bytes) -> list[tuple[str, np.ndarray]]:
    out, off = [], 0
    for name, dt, _w, count in meta:
        n = dt.itemsize * count
        out.append((name, np.frombuffer(blob[off:off + n], dtype=dt)))
        off += n
    return out


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
    ("infer", x), ("lr", m, e), ("opt", kind, beta_shift, train), ("end_sample",)."""

    ops: list = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(1 for o in self.ops if o[0] in ("train", "infer"))


def run_script(cdev: CDevice, ref: RefDevice, script: Script, case: int = 0, shapes: dict | None = None,
               compare_every_step: bool = True):
    """Play ``script`` on both; returns (steps done, Mismatch or None)."""
    steps = 0
    shapes = shapes or {}
    for op in script.ops:
        kind = op[0]
        if kind == "init":
            got = cdev.init(op[1])
            ref.init(op[1])
        elif kind == "reset":
            got = cdev.reset()
            ref.reset()
        elif kind == "train":
            got = cdev.train(op[1], op[2])
            ref.train(op[1], op[2])
        elif kind == "infer":
            got = cdev.infer(op[1])
            ref.infer(op[1])
        elif kind == "lr":
            got = cdev.set_lr(op[1], op[2])
            ref.set_lr(op[1], op[2])
        elif kind == "opt":
            got = cdev.set_optimizer(op[1], op[2], op[3])
            ref.set_optimizer(op[1], op[2], op[3])
        elif kind == "end_sample":
            p, d = cdev.predict(), cdev.digest()
            if p != ref.predict() or d != ref.digest():
                return steps, Mismatch(case, steps, "end of sample", "", -1, 0, 0,
                                       f"predict C {p} / Python {ref.predict()}, digest C {d:08x} / "
                                       f"Python {ref.digest():08x}")
            continue
        else:
            raise ValueError(f"unknown script op {kind!r}")
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
                  workdir: Path | None = None, cc: str = "gcc"):
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


def update_shifts(ref: RefDevice, x, label: int) -> dict:
    """The largest stochastic-rounding shift each tensor's update would use if ``ref`` took
    the training step (x, label) now (``ref`` is not changed). The integer reference's
    ``sround_shift`` is only defined for shifts below 64 (int64 shifts in numba)."""
    import copy

    from edgetp.fixed.network_q import forward_q, grad_formats, gradients_q, target_inputs_q
    from edgetp.fixed.primitives import bitlen
    from edgetp.fixed.update_q import STAT_F, factored_scales

    qm, opt, dev = ref.qm, ref.opt, ref.cfg
    labels = np.array([int(label)])
    new, aux = forward_q(qm, ref.state, ref._x(x), target_inputs_q(qm, labels, dev.targets))
    grads = gradients_q(qm, ref.state, new, aux, labels, dev.targets, ref.train_mode)
    fm = grad_formats(qm)
    out = {}
    for name, g in grads.items():
        if opt.kind == "sgd":
            eb = max(0, int(bitlen(np.abs(g).max())) - 54)
            out[name] = fm[name] + opt.lr_e - qm.fw[name] - eb
            continue
        rows, cols = g.shape
        rr, cc = copy.deepcopy(opt.stats.get(name, (np.zeros(rows, np.int64), np.zeros(cols, np.int64))))
        eb, _rm, row_s, _cm, col_s = factored_scales(g, fm[name], rr, cc, opt.beta_shift, opt.lr_m)
        row_s = row_s + opt.lr_e - qm.fw[name] - eb + fm[name] - STAT_F // 2
        out[name] = int((row_s[:, None] + col_s[None, :]).max())
    return out
