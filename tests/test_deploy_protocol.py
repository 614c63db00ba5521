"""The serial protocol's one definition: the generated C header, frames, the Python
parser (hypothesis) and the C parser (the same bytes give the same frames)."""

import shutil
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy import protocol as P
from deploy.build import BYTES_C, FIRMWARE, RUNTIME_DIR
from deploy.gen_proto import DEFAULT_OUT, flash_header_text, header_text, write_header
from deploy.relay import FaultPlan
from edgetp.errors import EdgetpError

frames = st.tuples(st.integers(0, 255), st.integers(0, P.SEQ_MOD - 1), st.binary(max_size=P.MAX_PAYLOAD))


def test_committed_header_is_generated_from_protocol_py():
    assert (DEFAULT_OUT / "etp_proto.h").read_text() == header_text(), (
        "deploy/generated/etp_proto.h is stale: run python -m deploy.gen_proto"
    )


def test_committed_flash_header_is_generated_from_store_py():
    from firmware_gen.store import DEFAULT_PAGE, DEFAULT_PROG

    assert (DEFAULT_OUT / "etp_flash.h").read_text() == flash_header_text(), (
        "deploy/generated/etp_flash.h is stale: run python -m deploy.gen_proto"
    )
    h = flash_header_text()
    assert f"#define ETP_FLASH_PAGE {DEFAULT_PAGE}u" in h and f"#define ETP_FLASH_PROG {DEFAULT_PROG}u" in h
    # the ports take the flash parameters from it, and write none of their own
    for port in ("host/port_host.c", "mps2/port_mps2.c", "riscv_virt/port_virt.c", "semihost/semihost_flash.c"):
        assert "#define ETP_FLASH_" not in (FIRMWARE / port).read_text(), port
    assert '#include "etp_flash.h"' in (FIRMWARE / "etp_port.h").read_text()


def test_header_names_every_command_status_and_layout():
    h = header_text()
    for c in P.Cmd:
        assert f"#define ETP_CMD_{c.name} " in h
    for s in P.Status:
        assert f"#define ETP_ST_{s.name} " in h
    assert f"ETP_PROTO_HASH 0x{P.spec_hash():08x}u" in h
    assert f"#define ETP_RSP_COUNTERS_SIZE {P.layout_struct('RSP_COUNTERS').size}u" in h
    assert "#define ETP_REQ_READ_TENSOR_LENGTH_OFF 6u" in h


def test_crc8_check_value():
    assert P.crc8(b"123456789") == 0xF4  # CRC-8/SMBUS check value (CRC-32: tests/test_bytes_c.py)


@given(frames)
def test_encode_parse_round_trip(fr):
    t, seq, pl = fr
    raw = P.encode(t, seq, pl)
    assert len(raw) == P.HEADER_SIZE + len(pl) + P.CRC_SIZE
    got = P.FrameParser().feed(raw)
    assert got == [P.Frame(t, seq, pl)]


@given(st.lists(st.tuples(st.binary(max_size=40), frames), max_size=6), st.binary(max_size=40))
def test_frames_survive_garbage_between_them(items, tail):
    stream, want = b"", []
    for garbage, (t, seq, pl) in items:
        stream += garbage + P.encode(t, seq, pl)
        want.append(P.Frame(t, seq, pl))
    parser = P.FrameParser()
    got = []
    for i in range(0, len(stream + tail), 7):  # arbitrary chunking
        got += parser.feed((stream + tail)[i : i + 7])
    # garbage could by chance hold a valid frame (2^-40); the real frames all arrive, in order
    it = iter(got)
    assert all(any(g == w for g in it) for w in want)


@given(frames, st.data())
def test_a_damaged_byte_never_yields_a_wrong_frame(fr, data):
    raw = bytearray(P.encode(*fr))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    after = P.encode(1, 2, b"next")
    got = P.FrameParser().feed(bytes(raw) + after)
    assert got[-1] == P.Frame(1, 2, b"next")
    assert all(g == P.Frame(*fr) or g == P.Frame(1, 2, b"next") for g in got)
    assert P.Frame(*fr) not in got


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_parser_never_fails_on_noise(noise):
    p = P.FrameParser()
    p.feed(noise)
    assert len(p.buf) < P.MAX_FRAME


def test_too_long_payload_rejected():
    with pytest.raises(ValueError):
        P.encode(1, 0, bytes(P.MAX_PAYLOAD + 1))
    head = struct.pack("<HBH", P.MAX_PAYLOAD + 1, 1, 0)
    bad = P.SYNC + head + bytes([P.crc8(head)]) + bytes(P.MAX_PAYLOAD + 1) + b"\0\0\0\0"
    p = P.FrameParser()
    assert p.feed(bad + P.encode(2, 3)) == [P.Frame(2, 3)]
    assert p.hdr_errors == 1


def test_layouts_pack_and_unpack():
    raw = P.pack("REQ_READ_TENSOR", index=3, offset=70000, length=200)
    assert len(raw) == 8
    f, rest = P.unpack("REQ_READ_TENSOR", raw + b"xy")
    assert f == {"index": 3, "offset": 70000, "length": 200} and rest == b"xy"
    with pytest.raises(ValueError):
        P.unpack("RSP_DIGEST", b"\0")


def test_fault_plan_parse():
    p = FaultPlan.parse("drop=0.01,dup=0.1,reset=5+9,reconnect=7,seed=3")
    assert p.drop == 0.01 and p.dup == 0.1 and p.reset == (5, 9) and p.reconnect == (7,) and p.seed == 3
    for bad in ("drop=2", "nope=1", "reset=a"):
        with pytest.raises(EdgetpError):
            FaultPlan.parse(bad)


# ------------------------------------------------------------------ C parser twin
@pytest.fixture(scope="module")
def link_dump(tmp_path_factory):
    from conftest import require

    require("cc")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    d = tmp_path_factory.mktemp("link")
    gen = write_header(d / "gen").parent
    exe = d / "link_dump"
    subprocess.run(
        [
            cc,
            "-O1",
            "-std=c99",
            "-Wall",
            "-Werror",
            f"-I{FIRMWARE}",
            f"-I{gen}",
            f"-I{RUNTIME_DIR}",
            str(FIRMWARE.parent / "fuzz" / "link_dump.c"),
            str(FIRMWARE / "etp_link.c"),
            str(RUNTIME_DIR / BYTES_C),
            "-o",
            str(exe),
        ],
        check=True,
    )
    return exe


IDLE = None  # an idle timeout between two parts of a stream


def _python_dump(parts: list) -> str:
    p = P.FrameParser()
    got = []
    for part in parts:
        got += p.idle() if part is IDLE else p.feed(part)
    lines = [f"F {f.type} {f.seq} {len(f.payload)}" + "".join(f" {b}" for b in f.payload) for f in got]
    return "\n".join(lines + [f"E {p.hdr_errors} {p.crc_errors} {p.idle_drops}"]) + "\n"


def _c_input(parts: list) -> bytes:
    """link_dump's escaped input: 0xFF 0x00 is the byte 0xFF, 0xFF 0x01 an idle timeout."""
    return b"".join(b"\xff\x01" if part is IDLE else part.replace(b"\xff", b"\xff\x00") for part in parts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            frames.map(lambda f: P.encode(*f)),
            st.binary(max_size=30),
            frames.map(lambda f: P.encode(*f)[:-3]),
            st.just(IDLE),
            frames.map(lambda f: P.encode(*f)[: P.HEADER_SIZE + 2]),
        ),
        max_size=8,
    ),
    st.integers(0, 2**32 - 1),
)
def test_c_and_python_parsers_agree(link_dump, parts, flip):
    parts = [bytearray(p) if p is not IDLE else IDLE for p in parts]
    data = [p for p in parts if p]
    if data and flip % 3 == 0:
        part = data[flip % len(data)]
        part[flip % len(part)] ^= 1 << (flip % 8)
    parts = [bytes(p) if p is not IDLE else IDLE for p in parts]
    out = subprocess.run([str(link_dump)], input=_c_input(parts), capture_output=True, check=True).stdout.decode()
    assert out == _python_dump(parts)


def test_an_idle_timeout_ends_a_truncated_frame():
    """A lone header announcing 256 bytes, then complete frames: before the idle timeout
    they are held as its payload; after it they are taken, the partial frame is dropped."""
    lone = P.encode(P.Cmd.DIGEST, 1, bytes(P.MAX_PAYLOAD))[: P.HEADER_SIZE]
    follow = P.encode(P.Cmd.DIGEST, 2) + P.encode(P.Cmd.PREDICT, 3)
    p = P.FrameParser()
    assert p.feed(lone + follow) == []
    assert p.idle() == [P.Frame(P.Cmd.DIGEST, 2), P.Frame(P.Cmd.PREDICT, 3)]
    assert p.idle_drops == 1 and p.buf == bytearray() and p.idle() == []


def test_c_parser_idle_timeout(link_dump):
    lone = P.encode(P.Cmd.DIGEST, 1, bytes(P.MAX_PAYLOAD))[: P.HEADER_SIZE]
    parts = [lone, P.encode(P.Cmd.DIGEST, 2), IDLE, P.encode(P.Cmd.PREDICT, 3)[:5], IDLE]
    out = subprocess.run([str(link_dump)], input=_c_input(parts), capture_output=True, check=True).stdout.decode()
    assert out == _python_dump(parts) == "F 8 2 0\nE 0 0 2\n"


def test_wheel_carries_the_firmware_sources(tmp_path):
    import sys
    import zipfile

    from conftest import ROOT

    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    (whl,) = tmp_path.glob("edgetp-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for f in (
        "main.c",
        "etp_link.c",
        "etp_server.c",
        "etp_port.h",
        "host/port_host.c",
        "mps2/startup.c",
        "mps2/port_mps2.c",
        "etp_image.ld",
        "etp_crt.c",
        "semihost/semihost_flash.c",
        "riscv_virt/startup.c",
        "riscv_virt/port_virt.c",
        "profile/profile_main.c",
    ):
        assert f"deploy/firmware/{f}" in names, f
    assert "deploy/generated/etp_proto.h" in names and "deploy/fuzz/fuzz_server.c" in names
    assert "deploy/generated/etp_flash.h" in names and "firmware_gen/runtime/etp_bytes.c" in names
