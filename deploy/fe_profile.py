"""Where the audio frontend's instructions go on the emulated Cortex-M4.

    python -m deploy.fe_profile [--model kws-mcu] [--utterances 2] [--running-max D]

Exports the model with the integer frontend, builds ``firmware/profile/fe_profile_main.c``
with it for QEMU's ``mps2-an386`` (the HIL's flags, ``-O2``), runs it under ``-icount``
and prints the instructions of a 10 ms hop (the frame's window, FFT, power, mel and log),
of each of its steps alone (etp_fe_load, etp_fe_fft, etp_fe_power, etp_fe_mel_log), of
the end of an utterance (its padded frames one by one, then etp_fe_finish) and of one
frame's input (L of the rows its Δ reads, on demand; Δ/ΔΔ; input scaling), and their sum
per utterance (docs/fixed-point.md §9). ``--running-max D`` profiles the model's input stage with the
causal running maximum of decay D instead of its own normaliser (L is then part of every hop).
Figures for docs, never asserted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from deploy.boards import BOARDS
from deploy.build import ARM_CC, ARM_FLAGS, FIRMWARE, STACK_SIZE, WARN, cross_flags, include_flags, model_sources
from deploy.gen_proto import write_header
from edgetp.errors import EdgetpError
from deploy.profile import qemu_records


STEPS = (
    ("load", "etp_fe_load: window, block exponent, shift, digit-reversed load"),
    ("fft", "etp_fe_fft: the 240-point complex FFT (radix 5, 3, 4, 4)"),
    ("power", "etp_fe_power: real-FFT split and power of the bins the mel bands read"),
    ("mel_log", "etp_fe_mel_log: mel energies and log2"),
)


def build(model_dir: Path, out: Path, utterances: int, opt: str = "-O2") -> Path:
    gen = write_header(out / "gen").parent
    bd = BOARDS["qemu"]
    defs = ["-DETP_COUNTER_SRC=1", *bd.c_defines(), f"-DETP_FE_PROF_UTTS={utterances}"]
    elf = out / "fe_profile.elf"
    srcs = [FIRMWARE / "profile" / "fe_profile_main.c", *bd.port_sources(), *model_sources(model_dir)]
    r = subprocess.run(
        [
            ARM_CC,
            *ARM_FLAGS,
            opt,
            *WARN,
            *defs,
            *include_flags(gen, model_dir),
            *map(str, srcs),
            f"-T{bd.ld}",
            *cross_flags(bd, STACK_SIZE),
            "-o",
            str(elf),
            "-lgcc",
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise EdgetpError(f"building the frontend profile failed:\n{r.stderr[-3000:]}")
    return elf


def run(elf: Path, timeout: float = 600) -> dict:
    out = {}
    for f in qemu_records(elf, timeout):
        if f[:1] == ["T"] and len(f) == 3:
            out[f[1]] = int(f[2])
    if "hop" not in out:
        raise EdgetpError(f"the frontend profile printed no result within {timeout:g} s")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.fe_profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="kws-mcu")
    ap.add_argument("--utterances", type=int, default=2)
    ap.add_argument(
        "--running-max",
        type=int,
        default=None,
        metavar="D",
        help="the running maximum with decay D instead of the model's normaliser",
    )
    a = ap.parse_args(argv)
    try:
        from deploy.reference import export_c
        from edgetp.audio import frontend_q as FQ
        from edgetp.audio.frontend_q import InputNorm
        from edgetp.model import load_model
        from firmware_gen.qmodel import qmodel_for

        model = load_model(a.model)
        if a.running_max is not None:
            model.frontend["running_max_decay"] = a.running_max
        qm, _ = qmodel_for(model)
        norm = InputNorm.for_model(model, qm)
        with tempfile.TemporaryDirectory(prefix="etp-feprof-") as tmp:
            d = export_c(qm, Path(tmp) / "model", frontend=norm)
            res = run(build(d, Path(tmp), a.utterances))
    except (EdgetpError, FileNotFoundError) as exc:
        print(f"deploy.fe_profile: error: {exc}")
        return 2
    hop = res["hop"]
    rm = norm.running_max_decay
    print(
        f"audio frontend on the Cortex-M4 (QEMU -icount, instructions), {a.model}'s input stage"
        + (f" with the running maximum (D = {rm}; L in every hop)" if rm else "")
        + ":"
    )
    print(f"  10 ms hop (window, block exponent, FFT, split, power, mel, log): mean {hop:,}, max {res['hop_max']:,}")
    for name, what in STEPS:
        print(f"    {name:<8} {res[name]:>7,} ({100 * res[name] / hop:4.1f} %)  {what}")
    rest = hop - sum(res[name] for name, _ in STEPS)
    print(
        f"    {'rest':<8} {rest:>7,} ({100 * rest / hop:4.1f} %)  streaming: sample copy, window shift, calls"
        + (", the running maximum and L" if rm else "")
    )
    print(
        f"  per frame when the network reads it ({'' if rm else 'L of the frame 4 ahead, '}delta, delta-delta, "
        f"input scaling): mean {res['features']:,}, max {res['features_max']:,}; frame 0"
        f"{'' if rm else ' (L of frames 0-8)'}: {res['features_first']:,}"
    )
    print(f"  per hop in all: {hop + res['features']:,}")
    print(
        f"  end of the utterance: {res['finish']:,} = {res['pad_frames']} padded frames (etp_fe_pad_frame, "
        f"max {res['pad_max']:,} each) + the rest of etp_fe_finish {res['finish_rest']:,}"
    )
    pushed = (FQ.N_SAMPLES + FQ.HALF - FQ.N_FFT) // FQ.HOP + 1  # frames computed while the samples arrive
    per_utt = pushed * hop + res["finish"] + res["features_first"] + (FQ.N_FRAMES - 1) * res["features"]
    print(
        f"  per utterance ({pushed} hops + end + {FQ.N_FRAMES} frames read): {per_utt:,} "
        f"(log gain {norm.log_gain:g}: L Q.{norm.l_frac}, offset {norm.log_offset})"
    )
    print(f"  RAM of etp_fe_t: {res['frame_bytes']:,} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
