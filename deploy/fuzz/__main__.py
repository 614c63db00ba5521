"""Build and run the libFuzzer target of the device's protocol code.

    python -m deploy.fuzz [--model DIR] [--locked] [--seconds S | --runs N] [--out DIR]

Builds ``fuzz_server.c`` + the firmware's link and server + the model in ``--model``
(default: a small real export, 12-10r-4, written by firmware_gen, whose API has every
optional part: SET_LR is compiled in) with Debian's clang,
``-fsanitize=fuzzer,address,undefined``, as the normal or (``--locked``) the locked
build, seeds a corpus with valid sessions written by deploy/protocol.py, runs it and
prints libFuzzer's summary. Exit status: libFuzzer's (0 = no crash).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from deploy import protocol as P
from deploy.build import FIRMWARE, api_defines, include_flags, model_sources
from deploy.gen_proto import write_header

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLANG = "clang"


def have_libfuzzer() -> bool:
    return shutil.which(CLANG) is not None


def default_model(out: Path) -> Path:
    """A small real export (every optional part of the API, SET_LR included)."""
    from deploy.reference import export_c, tiny_qmodel

    return export_c(tiny_qmodel(n_in=12, hidden=(10,), n_out=4), out / "model")


def build_fuzzer(model_dir: Path, out: Path, locked: bool = False) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    gen = write_header(out / "gen").parent
    exe = out / ("fuzz_server_locked" if locked else "fuzz_server")
    srcs = [HERE / "fuzz_server.c", FIRMWARE / "etp_link.c", FIRMWARE / "etp_server.c", *model_sources(model_dir)]
    from deploy.build import store_geometry
    from firmware_gen.store import DEFAULT_PAGE, DEFAULT_PROG

    geo = store_geometry(model_dir, DEFAULT_PAGE, DEFAULT_PROG)  # SAVE / FACTORY_RESET on a RAM flash
    store = (
        []
        if geo is None
        else [
            "-DETP_HAS_STORE=1",
            f"-DETP_FLASH_SIZE={geo.flash_bytes}u",
            f"-DETP_FLASH_PAGE={geo.page}u",
            f"-DETP_FLASH_PROG={geo.prog}u",
        ]
    )
    cmd = [
        CLANG,
        "-g",
        "-O1",
        "-fsanitize=fuzzer,address,undefined",
        "-fno-sanitize-recover=undefined",
        *store,
        f"-DETP_PROTO_LOCKED={int(locked)}",
        *api_defines(model_dir),
        *include_flags(gen, model_dir),
        *map(str, srcs),
        "-o",
        str(exe),
    ]
    subprocess.run(cmd, check=True)
    return exe


def seed_corpus(d: Path) -> None:
    """A few valid sessions in the structured mode (odd first byte) and the raw mode."""
    d.mkdir(parents=True, exist_ok=True)

    def structured(cmds):
        out = bytearray([1])
        for t, step, pl in cmds:
            out += bytes([t, step, len(pl)]) + pl
        return bytes(out)

    x = bytes(range(24))  # one frame of the default model (12 int16 features)
    sessions = {
        "train": [
            (P.Cmd.HELLO, 0, b""),
            (P.Cmd.INIT, 1, P.pack("REQ_INIT", seed=1)),
            (P.Cmd.RESET, 1, b""),
            (P.Cmd.TRAIN, 1, P.pack("REQ_TRAIN", label=1) + x),
            (P.Cmd.TRAIN, 0, P.pack("REQ_TRAIN", label=1) + x),
            (P.Cmd.DIGEST, 1, b""),
            (P.Cmd.COUNTERS, 1, b"\x01"),
        ],
        "tensors": [
            (P.Cmd.HELLO, 0, b""),
            (P.Cmd.TENSOR_INFO, 1, P.pack("REQ_TENSOR_INFO", index=0)),
            (P.Cmd.READ_TENSOR, 1, P.pack("REQ_READ_TENSOR", index=0, offset=2, length=8)),
            (P.Cmd.WRITE_TENSOR, 1, P.pack("REQ_WRITE_TENSOR", index=1, offset=1) + b"\x05\x06"),
            (P.Cmd.LOAD_X, 1, P.pack("REQ_LOAD_X", offset=2) + b"\x01\x00\x02\x00"),
            (P.Cmd.INFER, 1, b""),
            (P.Cmd.PREDICT, 1, b""),
            (P.Cmd.SET_LR, 1, P.pack("REQ_SET_LR", m=200, e=20)),
        ],
        "store": [
            (P.Cmd.HELLO, 0, b""),
            (P.Cmd.INIT, 1, P.pack("REQ_INIT", seed=2)),
            (P.Cmd.SAVE, 1, b""),
            (P.Cmd.TRAIN, 1, P.pack("REQ_TRAIN", label=1) + x),
            (P.Cmd.SAVE, 1, b""),
            (P.Cmd.SAVE, 0, b""),
            (P.Cmd.FACTORY_RESET, 1, b""),
            (P.Cmd.HELLO, 1, b""),
        ],
        # a replay across HELLO, learning-rate limits, statistics written out of range, a truncated frame
        "attacks": [
            (P.Cmd.HELLO, 0, b""),
            (P.Cmd.TRAIN, 1, P.pack("REQ_TRAIN", label=3) + x),
            (P.Cmd.HELLO, 3, b""),
            (P.Cmd.TRAIN, 0, P.pack("REQ_TRAIN", label=3) + x),
            (P.Cmd.SET_LR, 1, P.pack("REQ_SET_LR", m=255, e=-64)),
            (P.Cmd.WRITE_TENSOR, 1, P.pack("REQ_WRITE_TENSOR", index=30, offset=0) + b"\x00" * 7 + b"\x80"),
            (P.Cmd.TRAIN, 1, P.pack("REQ_TRAIN", label=1) + x),
            (P.Cmd.DIGEST, 4 | (9 << 3), b""),
            (P.Cmd.DIGEST, 1, b""),
            (P.Cmd.HELLO, 1, bytes(200)),
        ],
    }
    for name, cmds in sessions.items():
        (d / f"seed-{name}").write_bytes(structured(cmds))
    raw = bytearray([0])
    raw += P.encode(P.Cmd.HELLO, 7) + b"\x00\xa5" + P.encode(P.Cmd.DIGEST, 8)
    lone = P.encode(P.Cmd.DIGEST, 9, bytes(P.MAX_PAYLOAD))[: P.HEADER_SIZE]  # a header whose payload never comes
    raw += lone + b"\xff\x01" + P.encode(P.Cmd.DIGEST, 9)
    (d / "seed-raw").write_bytes(bytes(raw))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model folder (etp_model.h + C; default: a small real export)")
    ap.add_argument("--locked", action="store_true", help="the locked build (ETP_PROTO_LOCKED=1)")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--runs", type=int, default=-1)
    ap.add_argument("--out", default=None, help="work folder (default: $EDGETP_HOME/deploy-fuzz)")
    a = ap.parse_args(argv)
    from edgetp import paths

    out = Path(a.out) if a.out else paths.home() / "deploy-fuzz"
    model = Path(a.model).resolve() if a.model else default_model(out)
    exe = build_fuzzer(model, out, a.locked)
    corpus = out / ("corpus-locked" if a.locked else "corpus")
    seed_corpus(corpus)
    cmd = [
        str(exe),
        f"-max_total_time={a.seconds}",
        f"-runs={a.runs}",
        "-max_len=2048",
        f"-artifact_prefix={out}/",
        str(corpus),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = p.stderr.strip().splitlines()
    head = [ln for ln in lines if ln.startswith("fuzz_server: build")][:1]
    done = [ln for ln in lines if re.search(r"DONE|Done \d+ runs|ERROR|SUMMARY", ln)]
    print("\n".join(head + (done[-5:] or lines[-5:])))
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
