"""Build the firmware for a target from an exported model folder.

A model folder holds the generated model API (``etp_model.h`` and its ``*.c``; see
firmware_gen). The firmware is that plus ``deploy/firmware`` (main loop, link, server)
plus one port:

- ``host``: native ``cc``; serves the protocol on a pseudo-terminal (tests, fast checks);
- ``qemu`` (Cortex-M4, ``mps2-an386``), ``qemu-m7`` (``mps2-an500``), ``qemu-m33``
  (``mps2-an505``), ``qemu-rv32`` (RISC-V ``virt``): the emulated boards of deploy/boards.py,
  cross-compiled with their port (instructions counted under ``-icount``);
- ``board``: the Cortex-M4 image with the DWT cycle counter instead (a real MPS2
  AN386, or a starting point for another board: docs/porting.md).

``locked=True`` defines ``ETP_PROTO_LOCKED=1`` (no commands that dump or write state).
An export with the weight store (``etp_store_cfg.h``) is built with it (``ETP_HAS_STORE``) and
the flash parameters ``flash_page``/``flash_prog`` (``ETP_FLASH_PAGE``/``ETP_FLASH_PROG``);
the host and QEMU ports then simulate a NOR flash of the two slots' size (``ETP_FLASH_SIZE``).
Builds are cached by a hash of every input, under ``$EDGETP_HOME/deploy-build``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
import argparse

from deploy.boards import BOARDS, EMULATED, FIRMWARE, Board
from deploy.gen_proto import headers_text, write_header
from edgetp.errors import EdgetpError
from firmware_gen.build import CORTEX_M4, SANITIZE, WARN
from firmware_gen.memplan import PARTS, STACK
from firmware_gen.runtime import RUNTIME_DIR
from edgetp import paths
from firmware_gen.store import DEFAULT_PAGE, DEFAULT_PROG, Geometry, check_params, wear_lines

PLATFORMS = ("host", *EMULATED, "board")  # what a firmware is built for (not a TP target set)
ICOUNT_SHIFT = BOARDS["qemu"].icount_shift  # the M4's (profile.py, fe_profile.py)
STACK_SIZE = STACK  # the firmware's stack; it reports its high-water mark (~0.6 KB measured)
ARM_CC = "arm-none-eabi-gcc"
ARM_SIZE = "arm-none-eabi-size"
ARM_FLAGS = CORTEX_M4  # one definition of the flags, firmware_gen/build.py's
BYTES_C = "etp_bytes.c"  # the runtime's byte helpers (CRC-32, little-endian), shared by link and server


@dataclass
class Image:
    """A built firmware: ``path`` (executable or ELF) and, for a cross build, its sizes."""

    target: str
    path: Path
    locked: bool
    sizes: dict = field(default_factory=dict)  # text, data, bss, flash, ram (bytes)
    icount_shift: int = ICOUNT_SHIFT


def have_arm() -> bool:
    return shutil.which(ARM_CC) is not None and shutil.which(ARM_SIZE) is not None


def board_of(target: str) -> Board:
    """The board row a cross build uses (``board``: the M4's, with the DWT counter)."""
    return BOARDS["qemu" if target == "board" else target]


def cross_flags(bd: Board, stack_size: int, map_file: Path | None = None) -> list[str]:
    """The link of a bare-metal image: no start files (the port's), the board's libc specs and map."""
    return [
        "-nostartfiles",
        f"--specs={bd.specs}",
        *bd.link_flags(),
        f"-Wl,--defsym=__stack_size={stack_size}",
        "-Wl,--gc-sections",
        *([f"-Wl,-Map={map_file}"] if map_file else []),
    ]


def _run(cmd: list[str], what: str) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise EdgetpError(f"{what}: {cmd[0]} is not installed (./setup.sh installs the toolchain)") from None
    if p.returncode != 0:
        raise EdgetpError(f"{what} failed:\n{' '.join(cmd)}\n{p.stderr.strip()[-4000:]}")
    return p.stdout


def model_sources(model_dir: Path) -> list[Path]:
    """The model's C: a firmware_gen export's sources (it has a manifest), else every .c, with
    the runtime's etp_bytes.c when the folder has none (the link and server need it)."""
    model_dir = Path(model_dir)
    if not (model_dir / "etp_model.h").is_file():
        raise EdgetpError(f"{model_dir}: no etp_model.h (export the model's C first: edgetp export --c DIR)")
    if (model_dir / "etp_manifest.json").is_file():
        from firmware_gen.build import sources

        store = [model_dir / "etp_store.c"] if store_payload(model_dir) is not None else []
        return sources(model_dir) + store
    own = sorted(model_dir.glob("*.c"))
    return own if (model_dir / BYTES_C).is_file() else [*own, RUNTIME_DIR / BYTES_C]


def include_flags(gen_dir: Path, model_dir: Path) -> list[str]:
    """-I of a firmware build: the firmware, its generated headers, the model, then the runtime
    (etp_bytes.h for a model folder that does not carry it; an export's own copy comes first)."""
    return [f"-I{FIRMWARE}", f"-I{gen_dir}", f"-I{model_dir}", f"-I{RUNTIME_DIR}"]


def store_payload(model_dir: Path) -> int | None:
    """Bytes the export's weight store saves (ETP_STORE_PAYLOAD), or None without a store."""
    cfg = Path(model_dir) / "etp_store_cfg.h"
    if not cfg.is_file() or not (Path(model_dir) / "etp_store.c").is_file():
        return None
    m = re.search(r"^#define ETP_STORE_PAYLOAD (\d+)u", cfg.read_text(), re.M)
    if not m:
        raise EdgetpError(f"{cfg}: no ETP_STORE_PAYLOAD (a damaged export; export the model again)")
    return int(m.group(1))


def store_geometry(model_dir: Path, flash_page: int, flash_prog: int):
    """The weight store's :class:`firmware_gen.store.Geometry` in this build, or None."""
    n = store_payload(model_dir)
    if n is None:
        return None
    check_params(flash_page, flash_prog)
    return Geometry(n, flash_page, flash_prog)


def api_defines(model_dir) -> list[str]:
    """Compiler defines for the optional parts of the model API the export has."""
    heads = sorted(Path(model_dir).glob("*.h"))
    if any("etp_set_lr(" in h.read_text(errors="replace") for h in heads):
        return ["-DETP_HAS_SET_LR=1"]  # the full generated API (firmware_gen's etp_api.h)
    return []


def _key(parts: list) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, Path):
            h.update(str(p.name).encode() + p.read_bytes())
        else:
            h.update(str(p).encode())
    return h.hexdigest()[:16]


def build(
    model_dir,
    target: str = "host",
    out_root=None,
    locked: bool = False,
    opt: str = "-O2",
    stack_size: int = STACK_SIZE,
    extra_cflags=(),
    force: bool = False,
    port_dir=None,
    flash_page: int | None = None,
    flash_prog: int | None = None,
    cc: str | None = None,
    sanitize: bool = False,
    board: Board | None = None,
) -> Image:
    """Compile the firmware for ``target``; returns the :class:`Image` (cached by content).
    ``port_dir`` (cross targets): another board's port - its ``*.c`` (startup and the
    functions of etp_port.h) and one ``*.ld`` - instead of the board's; the core, flags and
    memory-map symbols stay the target's. ``cc`` (host): the
    compiler (default cc); ``sanitize`` (host): with ASan and UBSan at -O1 (verify-c). ``board``:
    another memory map for the target's board row (link_for_part)."""
    if target not in PLATFORMS:
        raise EdgetpError(f"build target must be one of {PLATFORMS}, got {target!r}")
    if target != "host" and (cc or sanitize):
        raise EdgetpError("a compiler choice and sanitizers are for the host build only")
    model_dir = Path(model_dir).resolve()
    msrc = model_sources(model_dir)
    common = [FIRMWARE / "main.c", FIRMWARE / "etp_link.c", FIRMWARE / "etp_server.c", FIRMWARE / "etp_listen.c"]
    bd = None if target == "host" else (board or board_of(target))
    ld = bd.ld if bd else None
    if target == "host":
        port = [FIRMWARE / "host" / "port_host.c"]
    elif port_dir is not None:
        port_dir = Path(port_dir).resolve()
        port, lds = sorted(port_dir.glob("*.c")), sorted(port_dir.glob("*.ld"))
        if not port or len(lds) != 1:
            raise EdgetpError(f"{port_dir}: a port folder holds C sources and exactly one linker script (*.ld)")
        ld = lds[0]
    else:
        port = bd.port_sources()
    headers = sorted(FIRMWARE.glob("*.h")) + sorted(model_dir.glob("*.h"))
    defs = [f"-DETP_PROTO_LOCKED={int(locked)}", *api_defines(model_dir)]
    geo = store_geometry(model_dir, flash_page or DEFAULT_PAGE, flash_prog or DEFAULT_PROG)
    if geo is not None:
        defs += [
            "-DETP_HAS_STORE=1",
            f"-DETP_FLASH_PAGE={geo.page}u",
            f"-DETP_FLASH_PROG={geo.prog}u",
            f"-DETP_FLASH_SIZE={geo.flash_bytes}u",
        ]
    if (model_dir / "etp_frontend_cfg.h").is_file():
        defs.append("-DETP_HAS_FRONTEND=1")  # the export carries the audio frontend (AUDIO_PCM / AUDIO_RUN)
    if (model_dir / "etp_det_cfg.h").is_file():
        defs.append("-DETP_HAS_DETECT=1")  # the export carries the keyword detector (DET_STEP)
    if target in EMULATED:
        defs += ["-DETP_COUNTER_SRC=1", *bd.c_defines(), "-DETP_FLASH_SEMIHOST=1"]
    elif target == "board":
        defs += ["-DETP_COUNTER_SRC=2", *bd.c_defines()]
    flags = [*(SANITIZE + ["-O1"] if sanitize else [opt]), *WARN, *defs, *extra_cflags]
    if target == "host":
        cc = cc or shutil.which("cc") or shutil.which("gcc") or "cc"
    key = _key(
        [target, cc or bd.cc, *flags, stack_size, headers_text(), *common, *port, *msrc, *headers]
        + ([ld, *bd.cpu_flags, *bd.link_flags(), bd.specs] if bd else [])
    )
    out = Path(out_root) if out_root else paths.home() / "deploy-build"
    out = out / f"{target}-{key}"
    exe = out / ("etp_fw" if target == "host" else "etp_fw.elf")
    shift = bd.icount_shift if bd else ICOUNT_SHIFT
    if exe.is_file() and not force:
        return Image(target, exe, locked, elf_sizes(exe, bd.size) if bd else {}, shift)
    out.mkdir(parents=True, exist_ok=True)
    gen = write_header(out / "gen")
    inc = include_flags(gen.parent, model_dir)
    srcs = [str(s) for s in (*common, *port, *msrc)]
    if target == "host":
        _run([cc, *flags, *inc, *srcs, "-o", str(exe)], "host firmware build")
        return Image(target, exe, locked)
    _run(
        [
            bd.cc,
            *bd.cpu_flags,
            *flags,
            *inc,
            *srcs,
            f"-T{ld}",
            *cross_flags(bd, stack_size, out / "etp_fw.map"),
            "-o",
            str(exe),
            "-lgcc",
        ],
        f"{target} firmware build",
    )
    return Image(target, exe, locked, elf_sizes(exe, bd.size), shift)


PART_TARGETS = {"cortex-m4": "board", "rv32imac": "qemu-rv32"}  # the build a part's link reuses, by core


def link_for_part(model_dir, part: str, out_root=None, stack_size: int = STACK_SIZE) -> Image:
    """Link the firmware with the memory regions of a part of firmware_gen.memplan.PARTS (link only: it
    proves the image, its RAM and stack fit; the weight store's two slots are kept out of the image's
    flash, at its end). An image that does not fit fails with the linker's overflow message."""
    if part not in PARTS:
        raise EdgetpError(f"no part {part!r}; one of {', '.join(PARTS)}")
    p = PARTS[part]
    target = PART_TARGETS[p.cpu]
    geo = store_geometry(Path(model_dir), *_store_units())
    store = geo.flash_bytes if geo else 0
    bd = replace(board_of(target), flash=(p.flash[0], p.flash[1] - store), ram=p.ram)
    return build(model_dir, target, out_root, stack_size=stack_size, board=bd)


def _store_units() -> tuple[int, int]:
    return DEFAULT_PAGE, DEFAULT_PROG


def elf_sizes(elf: Path, size: str = ARM_SIZE) -> dict:
    """Berkeley sizes of the ELF: flash = text + data, RAM = data + bss (bss includes the stack)."""
    out = _run([size, "-B", str(elf)], size)
    line = out.strip().splitlines()[-1].split()
    text, data, bss = (int(v) for v in line[:3])
    stack = 0
    if not elf.is_file():
        raise EdgetpError(f"no such ELF file: {elf}")
    m = elf.with_suffix(".map")
    if m.is_file():
        mm = re.search(r"^\.stack\s+0x[0-9a-f]+\s+0x([0-9a-f]+)", m.read_text(), re.M)
        stack = int(mm.group(1), 16) if mm else 0
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss, "stack": stack}


def main(argv=None) -> int:
    """``python -m deploy.build EXPORT_DIR --target board [--locked]``: build and print the image."""
    ap = argparse.ArgumentParser(
        prog="python -m deploy.build",
        description="Build the edgetp firmware for a target "
        "from a folder written by `edgetp export --c` (firmware_gen).",
    )
    ap.add_argument("model_dir", help="exported model folder (etp_model.h, *.c)")
    ap.add_argument("--target", choices=PLATFORMS, default="board")
    ap.add_argument("--locked", action="store_true", help="leave out TENSOR_INFO/READ_TENSOR/WRITE_TENSOR")
    ap.add_argument("--out", help="build folder (default: a cache folder)")
    ap.add_argument("--opt", default="-O2")
    ap.add_argument("--stack", type=int, default=STACK_SIZE)
    ap.add_argument("--port", help="another board's port folder (its *.c and one *.ld) instead of the target's")
    ap.add_argument("--flash-page", type=int, help="weight store: flash erase unit in bytes (default 4096)")
    ap.add_argument("--flash-prog", type=int, help="weight store: flash program unit in bytes (default 16)")
    ap.add_argument(
        "--part",
        choices=sorted(PARTS),
        help="link only, with this part's flash and RAM regions "
        "(firmware_gen/memplan.py's PARTS): does the firmware fit?",
    )
    a = ap.parse_args(argv)
    try:
        if a.part:
            im = link_for_part(a.model_dir, a.part, a.out, a.stack)
        else:
            im = build(
                a.model_dir,
                a.target,
                a.out,
                a.locked,
                a.opt,
                a.stack,
                port_dir=a.port,
                flash_page=a.flash_page,
                flash_prog=a.flash_prog,
            )
    except EdgetpError as exc:
        print(f"deploy.build: error: {exc}")
        return 2
    print(im.path)
    if a.part:
        p, s = PARTS[a.part], im.sizes
        print(
            f"links for {p.name}: flash {s['flash']} of {p.flash[1]} B (less the weight store at its end), "
            f"RAM {s['ram']} of {p.ram[1]} B"
        )
    if im.sizes:
        s = im.sizes
        print(
            f"flash {s['flash']} B (text {s['text']} + data {s['data']}), RAM {s['ram']} B "
            f"(data {s['data']} + bss {s['bss']}, of which stack {s['stack']})"
        )
    geo = store_geometry(Path(a.model_dir), a.flash_page or DEFAULT_PAGE, a.flash_prog or DEFAULT_PROG)
    for line in wear_lines(geo) if geo else []:
        print(line.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
