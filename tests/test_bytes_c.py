"""etp_bytes.c, the one C unit of byte helpers: its CRC-32 is zlib's, its little-endian and
element access are Python's struct "<", and no other C file carries a CRC table."""

import ctypes
import random
import struct
import subprocess
import zlib

import pytest
from conftest import ROOT, require

from firmware_gen.build import STRICT, default_cc
from firmware_gen.runtime import RUNTIME_DIR

BUFFERS = [b"", b"\x00", b"123456789", bytes(range(256)) * 3, random.Random(0).randbytes(999), b"\xff" * 64]


def _lib(tmp_path, source: str):
    require("cc")
    src = tmp_path / "etp_bytes.c"
    src.write_text(source)
    lib = tmp_path / "libbytes.so"
    subprocess.run(
        [default_cc(), *STRICT, "-O2", "-shared", "-fPIC", f"-I{RUNTIME_DIR}", str(src), "-o", str(lib)], check=True
    )
    L = ctypes.CDLL(str(lib))
    u8p, u32, u64 = ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint64
    for name, res, args in (
        ("etp_crc32", u32, [u32, u8p, u32]),
        ("etp_rd16", u32, [u8p]),
        ("etp_rd32", u32, [u8p]),
        ("etp_wr16", None, [ctypes.c_void_p, u32]),
        ("etp_wr32", None, [ctypes.c_void_p, u32]),
        ("etp_wr_le", None, [ctypes.c_void_p, u64, u32]),
        ("etp_elem_get", u64, [ctypes.c_void_p, u32, u32]),
        ("etp_elem_set", None, [ctypes.c_void_p, u32, u32, u64]),
    ):
        getattr(L, name).restype, getattr(L, name).argtypes = res, args
    return L


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return _lib(tmp_path_factory.mktemp("bytes"), (RUNTIME_DIR / "etp_bytes.c").read_text())


def test_crc32_is_zlibs(lib):
    for buf in BUFFERS:
        assert lib.etp_crc32(0, buf, len(buf)) == zlib.crc32(buf), buf[:16]
    assert lib.etp_crc32(0, b"123456789", 9) == 0xCBF43926  # the CRC-32 check value
    a, b = BUFFERS[4][:333], BUFFERS[4][333:]  # chained as zlib's
    assert lib.etp_crc32(lib.etp_crc32(0, a, len(a)), b, len(b)) == zlib.crc32(b, zlib.crc32(a))


def test_a_wrong_table_entry_is_caught(tmp_path):
    """The buffers reach every entry of the nibble table: one wrong entry changes a CRC."""
    text = (RUNTIME_DIR / "etp_bytes.c").read_text()
    assert text.count("0x6b6b51f4u") == 1
    bad = _lib(tmp_path, text.replace("0x6b6b51f4u", "0x6b6b51f5u"))
    assert any(bad.etp_crc32(0, buf, len(buf)) != zlib.crc32(buf) for buf in BUFFERS)


def test_little_endian_access_is_structs(lib):
    p = b"\x01\x82\x03\xf4\x55"
    assert lib.etp_rd16(p) == struct.unpack_from("<H", p)[0]
    assert lib.etp_rd32(p[1:]) == struct.unpack_from("<I", p, 1)[0]
    buf = ctypes.create_string_buffer(8)
    lib.etp_wr16(buf, 0x12345678)  # the low 16 bits
    lib.etp_wr32(ctypes.byref(buf, 2), 0xDEADBEEF)
    assert buf.raw[:6] == struct.pack("<HI", 0x5678, 0xDEADBEEF)
    lib.etp_wr_le(buf, 0x0102030405060708, 8)
    assert buf.raw == struct.pack("<Q", 0x0102030405060708)


@pytest.mark.parametrize("code", ["b", "B", "h", "H", "i", "I", "q"])
def test_element_access_gives_the_twos_complement_bits(lib, code):
    size = struct.calcsize(code)
    lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if code.islower() else (0, (1 << (8 * size)) - 1)
    vals = [lo, -1 if lo else 0, 1, hi]
    arr = ctypes.create_string_buffer(struct.pack(f"={len(vals)}{code}", *vals), len(vals) * size)
    for k, v in enumerate(vals):
        assert lib.etp_elem_get(arr, size, k) == v & ((1 << (8 * size)) - 1)
    lib.etp_elem_set(arr, size, 2, (-5) & 0xFFFFFFFFFFFFFFFF)  # the low bits of the width are stored
    assert struct.unpack_from(f"={code}", arr.raw, 2 * size)[0] == (-5 if code.islower() else (1 << 8 * size) - 5)


def test_one_crc_table_in_the_c():
    """The nibble table is written once, in etp_bytes.c (an export and the firmware share it)."""
    files = [
        p
        for d in ("firmware_gen/runtime", "deploy/firmware", "deploy/generated", "deploy/fuzz")
        for p in sorted((ROOT / d).rglob("*.[ch]"))
    ]
    holders = [p.relative_to(ROOT).as_posix() for p in files if "0x1db71064" in p.read_text().lower()]
    assert holders == ["firmware_gen/runtime/etp_bytes.c"]
