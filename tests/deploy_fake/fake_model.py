"""Python twin of the TEST DOUBLE etp_model.c (same arithmetic, same digest), used as
the "reference" in the deploy tests that do not need a real generated model."""

from __future__ import annotations

import zlib

import numpy as np

N_IN, N_OUT = 8, 3
MODEL_HASH = "fa4efa4efa4efa4e"


class FakeReference:
    """Implements deploy.hil's Reference protocol for the fake model."""

    n_in, n_out, x_dtype = N_IN, N_OUT, np.int16
    model_hash = MODEL_HASH

    def init(self, seed: int) -> None:
        self.w = np.array([(i * 37) % 64 - 32 for i in range(N_OUT * N_IN)], dtype=np.int16)
        self.rng = np.array([(seed * 2654435761 + 1) & 0xFFFFFFFF], dtype=np.uint32)
        self.steps = np.zeros(1, dtype=np.uint32)
        self.acc = np.zeros(N_OUT, dtype=np.int32)

    def _forward(self, x) -> None:
        w = self.w.astype(np.int64).reshape(N_OUT, N_IN)
        s = w @ np.asarray(x, dtype=np.int64)
        self.acc = np.clip(self.acc.astype(np.int64) + (s >> 8), -(2**31), 2**31 - 1).astype(np.int32)

    def train_sample(self, xs, label: int) -> None:
        self.acc[:] = 0
        for x in xs:
            self._forward(x)
            r = int(self.rng[0])
            r ^= (r << 13) & 0xFFFFFFFF
            r ^= r >> 17
            r ^= (r << 5) & 0xFFFFFFFF
            self.rng[0] = r
            x = np.asarray(x, dtype=np.int32)
            row = self.w[label * N_IN : (label + 1) * N_IN].astype(np.int32)
            bits = np.array([(r >> j) & 1 for j in range(N_IN)], dtype=np.int32)
            self.w[label * N_IN : (label + 1) * N_IN] = np.clip(row + (x >> 6) + bits, -32768, 32767)
            self.steps[0] += 1

    def infer_sample(self, xs) -> int:
        self.acc[:] = 0
        for x in xs:
            self._forward(x)
        return int(np.argmax(self.acc))

    def set_lr(self, m: int, e: int) -> None:
        pass

    def tensors(self) -> list[tuple[str, np.ndarray]]:
        return [("w", self.w), ("acc", self.acc), ("steps", self.steps), ("rng", self.rng)]

    def digest(self) -> int:
        c = 0
        for _, a in self.tensors():
            c = zlib.crc32(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes(), c)
        return c

    def snapshot(self):
        return [(n, a.copy()) for n, a in self.tensors()]

    def restore(self, snap) -> None:
        for n, a in snap:
            setattr(self, n, a.copy())
