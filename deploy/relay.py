"""A fault-injecting relay between the host and a device (tests, ``edgetp hil --faults``).

:class:`FaultyLink` wraps the host's port (a pyserial object) and is used by
:class:`deploy.host.Device` in its place. In both directions it drops, corrupts
(flips one bit of), duplicates and truncates bytes, seeded and counted; it can also
reset the device (through the target's reset: SIGUSR1 for the host build, QEMU's
``system_reset``) when the host writes its N-th frame, i.e. in the middle of a sample,
and cut the connection at the host's N-th write (``reconnect``: the device gets a random
prefix of that frame, then the port fails with ``OSError`` until the host reopens it
with :meth:`FaultyLink.reopen`; what the device sent meanwhile is lost).

Fault rates (``FaultPlan``): ``drop``/``corrupt`` per byte, ``dup``/``truncate`` per
write (the host writes one frame per call; the device's bytes arrive in chunks).
A plan as text: ``drop=0.002,corrupt=0.002,dup=0.05,truncate=0.02,reset=300+2000,reconnect=900,seed=1``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields

from edgetp.errors import EdgetpError
from edgetp.settings import parse_text, setting


RATE = {"lo": 0, "hi": 1, "hi_open": True}
WRITES = ("reset", "reconnect")  # write numbers joined by '+'


@dataclass
class FaultPlan:
    drop: float = setting(0.0, "per byte", **RATE)
    corrupt: float = setting(0.0, "per byte: flip one bit", **RATE)
    dup: float = setting(0.0, "per write", **RATE)
    truncate: float = setting(0.0, "per write", **RATE)
    reset: tuple = setting((), "reset the device before the host's N-th write (1-based)")
    reconnect: tuple = setting((), "cut the connection during the host's N-th write (1-based)")
    seed: int = setting(0, "the faults' random draws")
    to_device: bool = setting(True, "inject on host -> device bytes")
    to_host: bool = setting(True, "inject on device -> host bytes")

    @classmethod
    def parse(cls, text: str) -> "FaultPlan":
        """``key=value`` pairs separated by commas, typed and checked as the fields declare."""
        kw: dict = {}
        names = {f.name for f in fields(cls)}
        for part in filter(None, (p.strip() for p in text.split(","))):
            k, _, v = part.partition("=")
            if k not in names or not v:
                raise EdgetpError(f"bad fault spec {part!r}; keys: {', '.join(sorted(names))}")
            if k in WRITES:
                try:
                    kw[k] = tuple(int(n) for n in v.split("+"))
                except ValueError:
                    raise EdgetpError(f"bad fault spec {part!r}: {k} takes write numbers joined by '+'") from None
            else:
                kw[k] = parse_text(cls, k, v, f"fault spec {part!r}")
        return cls(**kw)


@dataclass
class FaultStats:
    writes: int = 0
    dropped: int = 0
    corrupted: int = 0
    duplicated: int = 0
    truncated: int = 0
    resets: int = 0
    reconnects: int = 0
    cut: list = field(default_factory=list)  # per reconnect: the command byte of the frame cut
    bytes_to_device: int = 0
    bytes_to_host: int = 0

    def total(self) -> int:
        return self.dropped + self.corrupted + self.duplicated + self.truncated + self.resets + self.reconnects


class FaultyLink:
    """The relay: a port-like object around ``port``; ``reset()`` resets the device;
    ``reopen_port()`` opens the device's port again (needed for ``reconnect`` faults)."""

    def __init__(self, port, plan: FaultPlan, reset=None, reopen_port=None):
        self.port = port
        self.plan = plan
        self.reset_device = reset
        self.reopen_port = reopen_port
        self.down = False  # the connection is cut until reopen()
        self.rng = random.Random(plan.seed)
        self.stats = FaultStats()
        self._pending = bytearray()  # device bytes already mangled, not yet handed out
        self.enabled = True

    def _mangle(self, data: bytes) -> bytes:
        p, r, s = self.plan, self.rng, self.stats
        out = bytearray()
        for b in data:
            if p.drop and r.random() < p.drop:
                s.dropped += 1
                continue
            if p.corrupt and r.random() < p.corrupt:
                b ^= 1 << r.randrange(8)
                s.corrupted += 1
            out.append(b)
        if p.truncate and len(out) > 1 and r.random() < p.truncate:
            del out[r.randrange(1, len(out)) :]
            s.truncated += 1
        if p.dup and out and r.random() < p.dup:
            out = out + bytes(out)
            s.duplicated += 1
        return bytes(out)

    # --------------------------------------------------------------- port interface
    def write(self, data: bytes) -> int:
        if self.down:
            raise OSError("the connection is cut (fault relay)")
        self.stats.writes += 1
        if self.enabled and self.stats.writes in self.plan.reset and self.reset_device is not None:
            self.stats.resets += 1
            self.reset_device()
        if self.enabled and self.stats.writes in self.plan.reconnect and self.reopen_port is not None:
            self.stats.reconnects += 1
            self.stats.cut.append(data[4] if len(data) > 4 else None)
            self.port.write(data[: self.rng.randrange(len(data) + 1)])
            self.down = True
            raise OSError("the connection was cut (fault relay)")
        self.stats.bytes_to_device += len(data)
        self.port.write(self._mangle(data) if self.enabled and self.plan.to_device else data)
        return len(data)

    def reopen(self) -> "FaultyLink":
        """The host opens the port again: a new connection; what was in flight is lost."""
        if self.reopen_port is None:
            raise OSError("the fault relay cannot reopen the port")
        self.port.close()
        self.port = self.reopen_port()
        self.port.reset_input_buffer()
        self._pending.clear()
        self.down = False
        return self

    @property
    def in_waiting(self) -> int:
        if self.down:
            raise OSError("the connection is cut (fault relay)")
        return len(self._pending) + (self.port.in_waiting or 0)

    def read(self, n: int = 1) -> bytes:
        if self.down:
            raise OSError("the connection is cut (fault relay)")
        if not self._pending:
            data = self.port.read(max(1, self.port.in_waiting or 0, n))
            self.stats.bytes_to_host += len(data)
            self._pending += self._mangle(data) if self.enabled and self.plan.to_host and data else data
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out

    def close(self) -> None:
        self.port.close()

    def reset_input_buffer(self) -> None:
        self._pending.clear()
        self.port.reset_input_buffer()
