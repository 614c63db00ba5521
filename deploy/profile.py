"""Where a training or an inference step's instructions go on the emulated Cortex-M4, per function.

    python -m deploy.profile EXPORT_DIR [--steps 101] [--top 15] [--infer]
    python -m deploy.profile --net 120-64r-36 [--seed 0] [--exact]

Builds ``firmware/profile/profile_main.c`` with the model's C compiled with
``-finstrument-functions`` (the port, startup and main are not instrumented), runs
it once under ``qemu-system-arm -M mps2-an386 -icount`` with the UART on stdout, and
prints each function's self and inclusive instructions per training step, or with ``--infer``
per inference step (names from ``arm-none-eabi-nm``). The hooks add tens of instructions per call, counted in the
caller; that cost is measured and removed at start-up; the split is still approximate
(instrumenting changes inlining); the HIL's per-step figures are the exact ones.
``--exact`` builds the same program without the hooks and prints only the exact mean and
maximum instructions of a training and an inference step (the same random features), and per
frame the mean, 99.9th percentile and maximum of inference steps, learning training steps and
forward-only training steps (deploy.frame_costs).
``--net`` exports a freshly initialised, quantized network of that shape (int16 weights,
class targets, the default colnorm optimizer) instead of reading EXPORT_DIR.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
import tempfile
import threading

from deploy.boards import BOARDS
from deploy.build import (
    ARM_CC,
    ARM_FLAGS,
    FIRMWARE,
    ICOUNT_SHIFT,
    STACK_SIZE,
    WARN,
    cross_flags,
    include_flags,
    model_sources,
)
from deploy.frame_costs import frame_summary
from deploy.gen_proto import write_header
from deploy.targets import QEMU
from edgetp.errors import EdgetpError
from edgetp.fixed.qconfig import from_float
from edgetp.tp.config import init_params, parse_net
from firmware_gen.generate import render


# static inline helpers (instrumenting them would stop their inlining and swamp the profile)
HEADERS = "etp_primitives.h,etp_kernels.h,etp_internal.h"


def random_export(net: str, out: Path, seed: int = 0) -> Path:
    """Export a freshly initialised ``net`` (edgetp.tp.config.init_params, quantized to int16
    weights, Q.12 features) with the default device settings into ``out``; returns ``out``."""
    cfg = parse_net(net)
    qm = from_float(cfg, init_params(cfg, seed), 12, 16)
    render(qm).write(out)
    return out


def build_profile(model_dir: Path, out: Path, steps: int, opt: str = "-O2", instrument: bool = True) -> Path:
    model_dir = Path(model_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    gen = write_header(out / "gen").parent
    inc = include_flags(gen, model_dir)
    defs = ["-DETP_COUNTER_SRC=1", *BOARDS["qemu"].c_defines(), f"-DETP_PROF_STEPS={steps}"]
    base = [ARM_CC, *ARM_FLAGS, opt, *WARN, *defs, *inc]
    objs = []
    for src in model_sources(model_dir):
        obj = out / (src.stem + ".o")
        prof = ["-finstrument-functions", f"-finstrument-functions-exclude-file-list={HEADERS}"] if instrument else []
        subprocess.run([*base, *prof, "-c", str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    elf = out / "profile.elf"
    bd = BOARDS["qemu"]
    port = [FIRMWARE / "profile" / "profile_main.c", *bd.port_sources()]
    subprocess.run(
        [*base, *map(str, port), *objs, f"-T{bd.ld}", *cross_flags(bd, STACK_SIZE), "-o", str(elf), "-lgcc"], check=True
    )
    return elf


def qemu_records(elf: Path, timeout: float = 600):
    """The whitespace-split lines a profiling firmware prints on the emulated Cortex-M4 (mps2-an386,
    ``-icount``), up to its ``END`` line; QEMU is killed after ``timeout`` seconds and stopped on exit."""
    p = subprocess.Popen(
        [
            QEMU,
            "-M",
            "mps2-an386",
            "-display",
            "none",
            "-nodefaults",
            "-serial",
            "stdio",
            "-icount",
            f"shift={ICOUNT_SHIFT},align=off,sleep=on",
            "-kernel",
            str(elf),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    watchdog = threading.Timer(timeout, p.kill)
    watchdog.start()
    try:
        for line in p.stdout:
            f = line.split()
            if f[:1] == ["END"]:
                return
            yield f
    finally:
        watchdog.cancel()
        p.terminate()
        p.wait(10)


def run_profile(elf: Path, timeout: float = 600) -> dict:
    rows, totals, frames = {"train": [], "infer": []}, {}, {"learn": [], "forward": [], "infer": []}
    for f in qemu_records(elf, timeout):
        if f[:1] == ["T"]:
            totals[f[1]] = int(f[2])
        elif f[:1] == ["F"]:
            frames[f[1]].append(int(f[2]))
        elif f[:1] == ["P"]:
            rows[f[1]].append((int(f[2], 16), int(f[3]), int(f[4]), int(f[5])))
    if "train" not in totals:
        raise EdgetpError(f"the profiling firmware printed no result within {timeout:g} s")
    names = {}
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            names[int(parts[0], 16) & ~1] = parts[2]
    return {
        "totals": totals,
        "frames": {k: frame_summary(v) for k, v in frames.items()},
        "functions": {
            kind: [{"name": names.get(a & ~1, hex(a)), "calls": c, "self": s, "inclusive": i} for a, c, s, i in r]
            for kind, r in rows.items()
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", nargs="?", help="exported model folder (etp_model.h, *.c)")
    ap.add_argument("--net", default=None, help="profile a freshly initialised network of this shape instead")
    ap.add_argument("--seed", type=int, default=0, help="initialisation seed of --net")
    ap.add_argument("--exact", action="store_true", help="no hooks: exact mean/max per step only")
    ap.add_argument("--steps", type=int, default=101, help="training steps (frames) to profile")
    ap.add_argument("--infer", action="store_true", help="per function: inference steps (default: training steps)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", default=None, help="build folder (default: a temporary one)")
    a = ap.parse_args(argv)
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="etp-prof-"))
    if (a.net is None) == (a.model_dir is None):
        print("ERROR deploy.profile: give an export folder or --net (one of them)")
        return 2
    try:
        model_dir = random_export(a.net, out / "model", a.seed) if a.net else Path(a.model_dir)
        res = run_profile(build_profile(model_dir, out, a.steps, instrument=not a.exact))
    except (subprocess.CalledProcessError, FileNotFoundError, EdgetpError) as exc:
        print(f"ERROR deploy.profile: {exc}")
        return 2
    n = a.steps
    t = res["totals"]
    if a.exact:
        print(
            f"{a.net or a.model_dir}: training step mean {t['train']:,} max {t['train_max']:,}, inference step mean "
            f"{t['infer']:,} max {t['infer_max']:,} instructions ({n} random frames each, exact)"
        )
        fr = res["frames"]
        print(
            "  per frame, mean / p99.9 / max: "
            + "; ".join(
                f"{name} {fr[k]['mean']:,.0f} / {fr[k]['p999']:,.0f} / {fr[k]['max']:,.0f} ({fr[k]['n']} frames)"
                for name, k in (("inference", "infer"), ("learning", "learn"), ("forward-only training", "forward"))
                if fr[k]
            )
        )
        return 0
    kind, what = ("infer", "inference") if a.infer else ("train", "training")
    functions = res["functions"][kind]
    calls = sum(f["calls"] for f in functions) / n
    tot = t.get(kind, 0) - calls * (t.get("hook_h", 0) + t.get("hook_e0", 0))
    print(
        f"{what} step: {tot:,.0f} instructions ({t.get(kind, 0):,} instrumented, less {calls:,.0f} calls x "
        f"{t.get('hook_h', 0) + t.get('hook_e0', 0)} of hooks); per function, per step:"
    )
    print(f"  {'function':34s}{'calls':>9s}{'self':>12s}{'incl.':>12s}{'self %':>8s}")
    for f in sorted(functions, key=lambda f: -f["self"])[: a.top]:
        print(
            f"  {f['name'][:34]:34s}{f['calls'] / n:9.1f}{f['self'] / n:12,.0f}{f['inclusive'] / n:12,.0f}"
            f"{100 * f['self'] / n / max(tot, 1):8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
