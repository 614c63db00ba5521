"""The memory plan of an export: RAM and flash per item, per group and in total.

Computed from the same layout the generator writes (firmware_gen/layout.py), so the
plan is the arrays of ``etp_model.c`` byte for byte; the tensor table and the label
strings are counted for a 32-bit target, the runtime's CRC-32 table (etp_bytes.c) with
them. Code, stack and the few descriptor structs are not included (``arm-none-eabi-size``
on the objects gives the code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgetp.errors import EdgetpError

from firmware_gen.layout import FLASH_GROUPS, RAM_GROUPS, STORE_GROUPS, TENSOR_ENTRY_BYTES, Layout
from firmware_gen.store import plan_rows


@dataclass
class Row:
    section: str  # "ram" or "flash"
    group: str
    name: str
    what: str  # shape and type
    nbytes: int


def memory_plan(lay: Layout, labels: list[str]) -> list[Row]:
    rows = []
    for it in lay.items:
        shape = "x".join(str(d) for d in it.shape)
        rows.append(Row(it.section, it.group, it.name, f"{shape} {lay.dtype_of(it)}", lay.nbytes(it)))
    # etp_bytes.c's CRC-32 nibble table: runtime code's, the same in every export, counted as a model table
    rows.append(Row("flash", "tables", "crc_nibble", "16 u32", 16 * 4))
    table = lay.table()
    names = sum(len(it.name) + 1 for it in table)
    n_state = sum(1 for it in table if it.group in ("data state", "target set"))
    rows.append(
        Row(
            "flash",
            "tables",
            "tensor_table",
            f"{len(table)} entries + names",
            len(table) * TENSOR_ENTRY_BYTES + names + 2 * n_state,
        )
    )
    rows.append(
        Row(
            "flash",
            "tables",
            "labels",
            f"{len(labels)} strings",
            4 * len(labels) + sum(len(s.encode()) + 1 for s in labels),
        )
    )
    rows += [Row("store", "weight store", name, what, nbytes) for name, what, nbytes in plan_rows(lay)]
    return rows


def totals(rows: list[Row]) -> dict:
    out = {"ram": 0, "flash": 0, "store": 0}
    for r in rows:
        out[r.section] += r.nbytes
    return out


def group_totals(rows: list[Row]) -> dict:
    out = {}
    for r in rows:
        out[(r.section, r.group)] = out.get((r.section, r.group), 0) + r.nbytes
    return out


def format_plan(rows: list[Row], title: str = "") -> list[str]:
    """Lines: every item, each group's subtotal, the RAM and flash totals."""
    lines = [f"memory plan{' for ' + title if title else ''} (bytes; code and stack not included)"]
    gt, tot = group_totals(rows), totals(rows)
    for section, groups in (("ram", RAM_GROUPS), ("flash", FLASH_GROUPS), ("store", STORE_GROUPS)):
        lines.append(f"  {section.upper()}")
        for g in groups:
            items = [r for r in rows if r.section == section and r.group == g]
            if not items:
                continue
            lines.append(f"    {g:<44s}{gt[(section, g)]:>10,d}")
            for r in items:
                lines.append(f"      {r.name:<14s}{r.what:<26s}{r.nbytes:>8,d}")
        lines.append(f"    {'total ' + section.upper():<44s}{tot[section]:>10,d}")
    return lines


def plan_json(rows: list[Row]) -> dict:
    return {
        "items": [r.__dict__ for r in rows],
        "totals": totals(rows),
        "groups": {f"{s}:{g}": n for (s, g), n in group_totals(rows).items()},
    }


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)(i?[bB])?\s*$")


def parse_size(text) -> int:
    """Bytes from "65536", "64K", "64KiB", "64kB", "0.5M" (K = 1024, M = 1024^2)."""
    m = _SIZE.match(str(text))
    if not m:
        raise EdgetpError(f"cannot read the size {text!r}: give bytes, or a number with K or M (e.g. 96K)")
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def check_budgets(rows: list[Row], ram_budget=None, flash_budget=None, title: str = "") -> None:
    """EdgetpError (with the plan) when RAM or flash exceeds its budget."""
    tot = totals(rows)
    over = []
    for section, budget, opt in (("ram", ram_budget, "--ram-budget"), ("flash", flash_budget, "--flash-budget")):
        if budget is None:
            continue
        b = parse_size(budget)
        if tot[section] > b:
            big = sorted((r for r in rows if r.section == section), key=lambda r: -r.nbytes)[:3]
            over.append(
                f"{section.upper()} needs {tot[section]:,d} B but {opt} is {b:,d} B "
                f"(over by {tot[section] - b:,d} B; largest: "
                + ", ".join(f"{r.name} {r.nbytes:,d} B" for r in big)
                + ")"
            )
    if over:
        raise EdgetpError("the model does not fit: " + "; ".join(over) + "\n" + "\n".join(format_plan(rows, title)))


STACK = 2048  # the firmware's stack, bytes (deploy/build.py reserves it; its high-water mark is ~0.6 KB)


@dataclass(frozen=True)
class Part:
    """A microcontroller's memory, to check an export against before linking for it."""

    name: str
    cpu: str  # a key of firmware_gen.build.CPU_FLAGS
    flash: tuple  # (origin, bytes): on-chip (or, on the ESP32-C3, the external flash's code window)
    ram: tuple  # (origin, bytes)
    note: str = ""


KIB = 1024
# The nRF52840's Cortex-M4F (soft float here: the runtime is integer); an ESP32-C3-class RV32IMC part with
# 400 KB SRAM (its data-bus window) and code from a 4 MB external flash (its instruction-cache window).
PARTS = {
    "nrf52840": Part("nRF52840", "cortex-m4", (0x00000000, 1024 * KIB), (0x20000000, 256 * KIB)),
    "esp32c3": Part(
        "ESP32-C3-class",
        "rv32imac",
        (0x42000000, 4096 * KIB),
        (0x3FC80000, 400 * KIB),
        "400 KB SRAM, 4 MB external flash",
    ),
}


def fit_lines(rows: list[Row], stack: int) -> list[str]:
    """Whether the plan fits each part of PARTS: RAM = the plan's + the stack, flash = the plan's
    arrays + the weight store's two slots (code comes on top: a link with the part's regions says
    whether it fits too: python -m deploy.build DIR --part NAME)."""
    tot = totals(rows)
    ram, flash = tot["ram"] + stack, tot["flash"] + tot["store"]
    out = [f"fits on (arrays + {stack:,d} B stack in RAM; arrays + weight store in flash; code not counted):"]
    for key, p in PARTS.items():
        ok = ram <= p.ram[1] and flash <= p.flash[1]
        out.append(
            f"  {p.name} ({key}): RAM {ram:,d} of {p.ram[1]:,d} B, flash {flash:,d} of {p.flash[1]:,d} B: "
            + ("fits, " + f"{p.flash[1] - flash:,d} B of flash left for code" if ok else "does NOT fit")
        )
    return out
