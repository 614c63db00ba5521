"""Build and run the libFuzzer target of the device's protocol code.

    python -m deploy.fuzz [--model DIR] [--seconds S | --runs N] [--out DIR]

Builds ``fuzz_server.c`` + the firmware's link and server + the model in ``--model``
(default: the test double in tests/deploy_fake) with Debian's clang,
``-fsanitize=fuzzer,address,undefined``, seeds a corpus with valid sessions written by
deploy/protocol.py, runs it and prints libFuzzer's summary. Exit status: libFuzzer's
(0 = no crash).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from deploy import protocol as P
from deploy.build import FIRMWARE
from deploy.gen_proto import write_header

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_MODEL = REPO / "tests" / "deploy_fake"
CLANG = "clang"


def have_libfuzzer() -> bool:
    return shutil.which(CLANG) is not None


def build_fuzzer(model_dir: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    gen = write_header(out / "gen").parent
    exe = out / "fuzz_server"
    srcs = [HERE / "fuzz_server.c", FIRMWARE / "etp_link.c", FIRMWARE / "etp_server.c", *sorted(Path(model_dir).glob("*.c"))]
    from deploy.build import store_geometry
    from firmware_gen.store import DEFAULT_PAGE, DEFAULT_PROG

    geo = store_geometry(model_dir, DEFAULT_PAGE, DEFAULT_PROG)     # SAVE / FACTORY_RESET on a RAM flash
    store = [] if geo is None else ["-DETP_HAS_STORE=1", f"-DETP_FLASH_SIZE={geo.flash_bytes}u",
                                    f"-DETP_FLASH_PAGE={geo.page}u", f"-DETP_FLASH_PROG={geo.prog}u"]
    cmd = [CLANG, "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined", *store,
           f"-I{FIRMWARE}", f"-I{gen}", f"-I{model_dir}", *map(str, srcs), "-o", str(exe)]
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

    x = bytes(range(16))
    sessions = {
        "train": [(P.Cmd.HELLO, 0, b""), (P.Cmd.INIT, 1, P.pack("REQ_INIT", seed=1)), (P.Cmd.RESET, 1, b""),
                  (P.Cmd.TRAIN, 1, P.pack("REQ_TRAIN", label=1) + x), (P.Cmd.TRAIN, 0, P.pack("REQ_TRAIN", label=1) + x),
                  (P.Cmd.DIGEST, 1, b""), (P.Cmd.COUNTERS, 1, b"\x01")],
        "tensors": [(P.Cmd.HELLO, 0, b""), (P.Cmd.TENSOR_INFO, 1, P.pack("REQ_TENSOR_INFO", index=0)),
                    (P.Cmd.READ_TENSOR, 1, P.pack("REQ_READ_TENSOR", index=0, offset=2, length=8)),
                    (P.Cmd.WRITE_TENSOR, 1, P.pack("REQ_WRITE_TENSOR", index=1, offset=1) + b"\x05\x06"),
                    (P.Cmd.LOAD_X, 1, P.pack("REQ_LOAD_X", offset=2) + b"\x01\x00\x02\x00"),
                    (P.Cmd.INFER, 1, b""), (P.Cmd.PREDICT, 1, b""), (P.Cmd.SET_LR, 1, P.pack("REQ_SET_LR", m=200, e=20))],
        "store": [(P.Cmd.HELLO, 0, b""), (P.Cmd.INIT, 1, P.pack("REQ_INIT", seed=2)), (P.Cmd.SAVE, 1, b""),
                  (P.Cmd.TRAIN, 1, P.pack("REQ_TRAIN", label=1) + x), (P.Cmd.SAVE, 1, b""), (P.Cmd.SAVE, 0, b""),
                  (P.Cmd.FACTORY_RESET, 1, b""), (P.Cmd.HELLO, 1, b"")],
    }
    for name, cmds in sessions.items():
        (d / f"seed-{name}").write_bytes(structured(cmds))
    raw = bytearray([0])
    raw += P.encode(P.Cmd.HELLO, 7) + b"\x00\xa5" + P.encode(P.Cmd.DIGEST, 8)
    (d / "seed-raw").write_bytes(bytes(raw))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder (etp_model.h + C)")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--runs", type=int, default=-1)
    ap.add_argument("--out", default=None, help="work folder (default: $EDGETP_HOME/deploy-fuzz)")
    a = ap.parse_args(argv)
    from edgetp import paths
    out = Path(a.out) if a.out else paths.home() / "deploy-fuzz"
    exe = build_fuzzer(Path(a.model).resolve(), out)
    corpus = out / "corpus"
    seed_corpus(corpus)
    cmd = [str(exe), f"-max_total_time={a.seconds}", f"-runs={a.runs}", "-max_len=2048",
           f"-artifact_prefix={out}/", str(corpus)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = p.stderr.strip().splitlines()
    done = [ln for ln in lines if re.search(r"DONE|Done \d+ runs|ERROR|SUMMARY", ln)]
    print("\n".join(done[-5:] or lines[-5:]))
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
