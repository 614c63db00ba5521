"""The compiled export as a device: etp_harness.c's stdin/stdout protocol behind
RefDevice's methods (init, reset, train, infer, predict, digest, tensors, ...)."""
from __future__ import annotations

import os
import struct
import subprocess

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.qconfig import int_type
from edgetp.fixed.update_q import KINDS

from firmware_gen.layout import DTYPES

_CODES = {v[0]: np.dtype(v[2]) for v in DTYPES.values()}


class CDeviceError(EdgetpError):
    """The C program died (a sanitizer report, a crash) or broke the protocol."""


class CDevice:
    """The compiled export behind etp_harness.c, with RefDevice's methods."""

    def __init__(self, exe, n_in: int, xbits: int, env: dict | None = None):
        self.n_in, self.xdtype = n_in, np.dtype(int_type(xbits)).newbyteorder("<")
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

    def set_optimizer(self, kind: str, beta: int, train: str, clip: int = -1) -> int:
        return self._status(b"O" + bytes([KINDS.index(kind), beta, int(train == "all")]) + struct.pack("<b", clip))

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
