"""Shared set-up of the deploy tests: the test-double model, started targets, data."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_model import FakeReference  # noqa: E402

from deploy.build import build  # noqa: E402
from deploy.host import Device  # noqa: E402
from deploy.relay import FaultPlan, FaultyLink  # noqa: E402
from deploy.targets import start  # noqa: E402

FAKE_DIR = HERE


def fake_data(n_support=6, n_query=3, T=20, seed=0):
    rng = np.random.default_rng(seed)
    sx = rng.integers(-3000, 3000, (n_support, T, 8)).astype(np.int16)
    qx = rng.integers(-3000, 3000, (n_query, T, 8)).astype(np.int16)
    return (sx, np.arange(n_support) % 3), (qx, np.arange(n_query) % 3)


class ScriptedPort:
    """A serial-port double for the host side (``deploy.host.Device``): the k-th write is answered
    with ``replies[k]`` (raw bytes, possibly not a frame), writes beyond the list with nothing;
    ``writes`` counts the writes."""

    def __init__(self, replies):
        self.replies, self.buf, self.writes = list(replies), b"", 0

    def write(self, data):
        self.writes += 1
        if self.replies:
            self.buf += self.replies.pop(0)

    @property
    def in_waiting(self):
        return len(self.buf)

    def read(self, n=1):
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def close(self):
        pass


@contextmanager
def device(target="host", locked=False, faults: str | None = None, timeout=None, model_dir=FAKE_DIR):
    """(target, Device) on a freshly started firmware; ``faults`` puts the relay in between."""
    import serial

    image = build(model_dir, target, locked=locked)
    with start(target, image) as t:
        reopen = lambda: serial.serial_for_url(t.url, timeout=0.01)  # noqa: E731
        port = reopen()
        link = (
            FaultyLink(port, FaultPlan.parse(faults), reset=t.reset, reopen_port=reopen) if faults is not None else port
        )
        dev = Device(
            link,
            timeout=timeout or (0.05 if target == "host" else 1.0),
            retries=40,
            reopen=link.reopen if faults is not None else reopen,
        )
        try:
            yield t, dev
        finally:
            dev.close()


__all__ = ["FakeReference", "ScriptedPort", "device", "fake_data", "FAKE_DIR"]
