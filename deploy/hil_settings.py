"""How `edgetp hil` runs a session, besides the device settings (firmware_gen.defaults.DeviceSettings): the keys of a
hil recipe file (or ``--set KEY=VALUE``) that shape the session, the build and the link, each default declared once."""

from __future__ import annotations

from dataclasses import dataclass

from deploy.build import STACK_SIZE
from edgetp.settings import setting
from firmware_gen.store import DEFAULT_PAGE, DEFAULT_PROG

QEMU_SAMPLE = 24  # operation indices a QEMU sweep cuts at by default (each run restarts QEMU)


@dataclass
class HilSettings:
    epochs: int | None = setting(
        None,
        "passes over the support set, lr cosine-annealed per epoch (default: the "
        "model's recipe, else finetune's default)",
        lo=1,
    )
    query_limit: int = setting(0, "evaluate at most this many query utterances (0 = all)", lo=0)
    support_limit: int = setting(0, "train on at most this many support utterances (0 = all)", lo=0)
    recover: bool = setting(True, "go on after a device reset (restore and resend); false: stop, saying what was lost")
    timeout: float | None = setting(
        None,
        "seconds to wait for an answer before resending (default 0.5 on host, 5 on qemu or a board)",
        lo=0,
        lo_open=True,
    )
    baud: int = setting(115200, "baud rate of a serial port", lo=1)
    opt: str = setting("-O2", "C optimisation flag of the firmware")
    stack: int = setting(STACK_SIZE, "stack bytes reserved on the Cortex-M4", lo=256)
    cut_sample: int | None = setting(
        None,
        "power-cut sweep: cut at N operation indices spread over the save instead "
        f"of at every one (default: every one on host, {QEMU_SAMPLE} on qemu)",
        lo=1,
    )
    cut_modes: str = setting(
        "torn,after",
        "power-cut sweep: torn (the operation's bytes end up random), after (it "
        "completes, then the power goes), joined by commas",
    )
    flash_page: int = setting(DEFAULT_PAGE, "flash erase unit in bytes (the weight store)", lo=1)
    flash_prog: int = setting(DEFAULT_PROG, "flash program unit in bytes (the weight store)", lo=1)
