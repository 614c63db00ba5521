"""What verify-c plays on the device and on the integer reference: a :class:`Script` of
operations (firmware_gen.cases and firmware_gen.script_finetune write them; deploy/bitexact.py plays
them on the firmware and on :class:`~edgetp.fixed.device.RefDevice`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Script:
    """What to do on both devices: ``ops`` of ("init", seed), ("reset",), ("train", x, label),
    ("infer", x), ("lr", m, e), ("opt", kind, beta_shift, train, clip), ("end_sample",)."""

    ops: list = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(1 for o in self.ops if o[0] in ("train", "infer"))


# the method each operation calls, on a RefDevice; a driver that names one otherwise says so (``renamed``)
OP_METHODS = {
    "init": "init",
    "reset": "reset",
    "train": "train",
    "infer": "infer",
    "lr": "set_lr",
    "opt": "set_optimizer",
}


def op_method(dev, op, renamed: dict | None = None):
    """The bound method of ``dev`` that applies script operation ``op`` (not "end_sample")."""
    name = {**OP_METHODS, **(renamed or {})}.get(op[0])
    if name is None:
        raise ValueError(f"unknown script op {op[0]!r}")
    return getattr(dev, name)


def play(dev, op) -> int:
    """Apply one script operation (not "end_sample") to a RefDevice; returns its status (0)."""
    return op_method(dev, op)(*op[1:]) or 0
