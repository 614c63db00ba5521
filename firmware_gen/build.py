"""The compiler flags of every build of the C, and the Cortex-M4 build of an export's objects
(their sizes). The host build that verify-c runs is the firmware's (deploy/build.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edgetp.errors import EdgetpError

from firmware_gen.runtime import DETECT_SOURCES, FRONTEND_SOURCES, SOURCES

# The compiler flags of every build of the C (deploy/build.py's firmware, verify-c's with -Werror):
WARN = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes"]
STRICT = [*WARN, "-Werror"]
# Cortex-M4: the runtime is integer-only, so soft float (newlib's default multilib, what the
# firmware links against); objects measured here are the ones the firmware links.
_SECTIONS = ["-ffunction-sections", "-fdata-sections", "-fno-common"]
CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", *_SECTIONS]
# The other cores the firmware is built for (deploy/boards.py), soft float like the M4. The M33 is
# Armv8-M Mainline with its DSP extension (the runtime's __ARM_FEATURE_DSP paths); RV32IMAC has no
# Arm intrinsics: the runtime's portable C. Plain rv32imac (not _zicsr): GCC 12's multilib match is exact,
# so the port enables Zicsr in its own asm (.option arch) for the CSRs it reads.
CPU_FLAGS = {
    "cortex-m4": CORTEX_M4,
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=soft", *_SECTIONS],
    "cortex-m33": ["-mcpu=cortex-m33", "-march=armv8-m.main+dsp", "-mthumb", "-mfloat-abi=soft", *_SECTIONS],
    "rv32imac": ["-march=rv32imac", "-mabi=ilp32", "-mcmodel=medany", *_SECTIONS],
}
# Each core's cross compiler and the C library its bare-metal link uses (newlib-nano; picolibc for RISC-V,
# what Debian ships for riscv64-unknown-elf): the firmware build (deploy/boards.py) and the export's
# CMake toolchain files (firmware_gen/cmake.py).
CROSS = {
    "cortex-m4": ("arm-none-eabi-gcc", "nano.specs"),
    "cortex-m7": ("arm-none-eabi-gcc", "nano.specs"),
    "cortex-m33": ("arm-none-eabi-gcc", "nano.specs"),
    "rv32imac": ("riscv64-unknown-elf-gcc", "picolibc.specs"),
}
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def default_cc() -> str | None:
    """The host compiler the harness uses: gcc, else clang, else cc (None if there is none)."""
    return next((cc for cc in ("gcc", "clang", "cc") if have(cc)), None)


def _run(cmd, cwd=None) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise EdgetpError(f"compiling failed: {' '.join(map(str, cmd))}\n{r.stderr.strip()}")


def sources(export_dir: Path) -> list[Path]:
    """The export's C sources (with the audio frontend's when the export carries it)."""
    out = [export_dir / "etp_model.c", *(export_dir / s for s in SOURCES)]
    if (export_dir / "etp_frontend_cfg.c").is_file():
        out += [export_dir / "etp_frontend_cfg.c", *(export_dir / s for s in FRONTEND_SOURCES)]
    if (export_dir / "etp_det_cfg.h").is_file():
        out += [export_dir / s for s in DETECT_SOURCES]
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
        _run([cc, *STRICT, *CORTEX_M4, opt, "-I", str(export_dir), "-c", str(src), "-o", str(obj)])
        objs.append(obj)
    size = cc.replace("gcc", "size")
    r = subprocess.run([size, *map(str, objs)], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines()[1:]:
        f = line.split()
        out[Path(f[5]).name] = (int(f[0]), int(f[1]), int(f[2]))
    return out
