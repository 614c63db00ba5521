"""The power-safe weight store: its flash layout, defined once (generated into ``etp_store_cfg.h``).

The C twin is ``firmware_gen/runtime/etp_store.c``; this module is the definition both
follow and the Python twin a host (or a test) uses to read or write a flash image.

What is saved: the *persistent* tensors of the device layout (``layout.persistent``:
the trainable weights and the whole optimizer group - PRNG state, optimizer step
count, optimizer settings, row/column statistics), in tensor-table order, each element
as little-endian bytes. With them a device goes on learning exactly as before; the
neuron state is what ``etp_reset_state`` zeroes anyway.

Flash: two slots, A at offset 0 and B at ``slot_bytes``, each a whole number of erase
pages. A slot::

    offset            size  field
    0                 4     magic        MAGIC ("ETPS" little-endian)
    4                 2     version      VERSION
    6                 2     header_size  HEADER_SIZE
    8                 4     generation   1, 2, 3, ... (newest valid slot wins at boot)
    12                4     length       payload bytes
    16                32    model_hash   sha256 of the integer model (firmware_gen.qmodel.qmodel_hash)
    48                4     crc          CRC-32 (zlib's) over bytes 0..47 then the payload
    header_area       length  payload    (header_area = HEADER_SIZE rounded up to the program unit)

A save writes the slot that does not hold the newest valid state: it erases every page
of that slot (the header's page first), programs the payload, programs the header last
(its CRC field is in the last program unit of the header), then reads the slot back and
checks its CRC. A power cut at any moment therefore leaves the other slot untouched and
this one either invalid (erased, torn or without a header: wrong magic or CRC) or
complete. At boot the valid slot (magic, version, header size, length, model hash and
CRC all right) with the highest generation is loaded; a slot of another model is
ignored; with none the device keeps the shipped weights (``etp_init(0)``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from edgetp.errors import EdgetpError

from firmware_gen.layout import DTYPES, Layout, persistent

MAGIC = 0x53505445  # b"ETPS" as a little-endian u32
VERSION = 1
HEADER = [
    ("magic", "I"),
    ("version", "H"),
    ("header_size", "H"),
    ("generation", "I"),
    ("length", "I"),
    ("model_hash", "32s"),
    ("crc", "I"),
]
HEADER_STRUCT = struct.Struct("<" + "".join(c for _, c in HEADER))
HEADER_SIZE = HEADER_STRUCT.size
CRC_OFF = HEADER_SIZE - 4  # the CRC covers the header up to here, then the payload
NO_SLOT = 0xFF  # etp_store_info()->slot when no slot was loaded
N_SLOTS = 2

# Build parameters of the flash (deploy/build.py passes them as -D; a board sets its own):
DEFAULT_PAGE = 4096  # erase unit, bytes (a 4 KB sector, as most SPI NOR and many MCU flashes)
DEFAULT_PROG = 16  # program unit, bytes (8 on STM32L4, 16 on STM32G0/L5, 32 on STM32H7)
ENDURANCE = 10_000  # erase cycles a page is rated for, for the wear figure

# etp_store_status_t (C) <- these names, in order
STATUS = ("OK", "EMPTY", "EFLASH", "EVERIFY", "ESIZE")
STATUS_DOC = {
    "OK": "done",
    "EMPTY": "no valid slot at boot: the shipped weights",
    "EFLASH": "the port's flash driver reported an error",
    "EVERIFY": "the slot read back wrong",
    "ESIZE": "the port's flash is smaller than the two slots",
}


def flash_defaults_c() -> list[str]:
    """The C defaults of the flash parameters, for every header that needs them (this module's
    ``etp_store_cfg.h`` and deploy/gen_proto.py's ``etp_flash.h``, which the ports include)."""
    return [
        f"#ifndef ETP_FLASH_PAGE\n#define ETP_FLASH_PAGE {DEFAULT_PAGE}u   /* erase unit, bytes */\n#endif",
        f"#ifndef ETP_FLASH_PROG\n#define ETP_FLASH_PROG {DEFAULT_PROG}u   /* program unit, bytes */\n#endif",
    ]


def check_params(page: int, prog: int) -> None:
    if prog < 1 or page < prog or page % prog or prog & (prog - 1) or page & (page - 1):
        raise EdgetpError(
            f"flash page {page} B and program unit {prog} B must be powers of two, "
            "the page a multiple of the program unit"
        )


def round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


@dataclass(frozen=True)
class Geometry:
    """Where things are in a slot, and what a save costs, for one layout and flash."""

    payload: int  # bytes of the persistent tensors
    page: int
    prog: int

    @property
    def header_area(self) -> int:
        return round_up(HEADER_SIZE, self.prog)

    @property
    def slot_bytes(self) -> int:
        return round_up(self.header_area + self.payload, self.page)

    @property
    def flash_bytes(self) -> int:
        return N_SLOTS * self.slot_bytes

    @property
    def erases(self) -> int:
        return self.slot_bytes // self.page

    @property
    def programs(self) -> int:
        return self.header_area // self.prog + round_up(self.payload, self.prog) // self.prog

    @property
    def saves_per_endurance(self) -> int:
        """Saves until a page reaches ENDURANCE erases: every save erases one slot, saves alternate."""
        return N_SLOTS * ENDURANCE


def payload_bytes(lay: Layout) -> int:
    return sum(lay.nbytes(it) for it in persistent(lay))


def geometry(lay: Layout, page: int = DEFAULT_PAGE, prog: int = DEFAULT_PROG) -> Geometry:
    check_params(page, prog)
    return Geometry(payload_bytes(lay), page, prog)


def hash_bytes(model_hash: str) -> bytes:
    """The 32 bytes of a 64-hex-digit model hash (what the header stores)."""
    b = bytes.fromhex(model_hash)
    if len(b) != 32:
        raise EdgetpError(f"model hash {model_hash!r} is not 64 hex digits")
    return b


# ----------------------------------------------------------------------------- Python twin
def payload_of(lay: Layout, tensors) -> bytes:
    """The payload a device saves: the persistent tensors of ``tensors`` ([(name, array)] in
    table order, as ``firmware_gen.tensors.state_tensors``), little-endian."""
    src = dict(tensors)
    out = []
    for it in persistent(lay):
        a = np.asarray(src[it.name]).reshape(-1).astype(np.dtype(DTYPES[lay.dtype_of(it)][2]).newbyteorder("<"))
        out.append(a.tobytes())
    return b"".join(out)


def encode_slot(geo: Geometry, payload: bytes, generation: int, model_hash: str) -> bytes:
    """The bytes of a complete slot (erased bytes 0xFF), as etp_store_save writes it."""
    if len(payload) != geo.payload:
        raise EdgetpError(f"payload of {len(payload)} bytes, the layout saves {geo.payload}")
    head = HEADER_STRUCT.pack(MAGIC, VERSION, HEADER_SIZE, generation, len(payload), hash_bytes(model_hash), 0)
    crc = zlib.crc32(payload, zlib.crc32(head[:CRC_OFF])) & 0xFFFFFFFF
    head = head[:CRC_OFF] + struct.pack("<I", crc)
    body = head.ljust(geo.header_area, b"\xff") + payload
    return body.ljust(geo.slot_bytes, b"\xff")


@dataclass
class Slot:
    index: int
    valid: bool
    why: str  # "" when valid
    generation: int = 0
    payload: bytes = b""


def decode_slot(geo: Geometry, data: bytes, index: int, model_hash: str) -> Slot:
    """Check one slot as etp_store_boot does."""
    if len(data) < geo.slot_bytes:
        return Slot(index, False, "short")
    f = dict(zip((n for n, _ in HEADER), HEADER_STRUCT.unpack_from(data)))
    bad = lambda why: Slot(index, False, why, f["generation"])
    if f["magic"] != MAGIC:
        return bad("magic")
    if f["version"] != VERSION or f["header_size"] != HEADER_SIZE:
        return bad("version")
    if f["length"] != geo.payload:
        return bad("length")
    if f["model_hash"] != hash_bytes(model_hash):
        return bad("model")
    payload = bytes(data[geo.header_area : geo.header_area + geo.payload])
    if zlib.crc32(payload, zlib.crc32(bytes(data[:CRC_OFF]))) & 0xFFFFFFFF != f["crc"]:
        return bad("crc")
    return Slot(index, True, "", f["generation"], payload)


def boot_select(geo: Geometry, image: bytes, model_hash: str) -> Slot | None:
    """The slot etp_store_boot loads from a flash image: the valid one with the highest generation."""
    slots = [
        decode_slot(geo, image[k * geo.slot_bytes : (k + 1) * geo.slot_bytes], k, model_hash) for k in range(N_SLOTS)
    ]
    valid = [s for s in slots if s.valid]
    return max(valid, key=lambda s: s.generation) if valid else None


# ----------------------------------------------------------------------------- C side
def cfg_header(lay: Layout, stamp_text: str, model_hash: str) -> str:
    """``etp_store_cfg.h``: the layout above as C constants, and which tensors are saved."""
    table = lay.table()
    idx = [table.index(it) for it in persistent(lay)]
    L = [
        stamp_text,
        "#ifndef ETP_STORE_CFG_H",
        "#define ETP_STORE_CFG_H",
        "",
        "/* flash layout of a slot (firmware_gen/store.py) */",
        f"#define ETP_STORE_MAGIC 0x{MAGIC:08X}u",
        f"#define ETP_STORE_VERSION {VERSION}u",
        f"#define ETP_STORE_HEADER_SIZE {HEADER_SIZE}u",
        f"#define ETP_STORE_N_SLOTS {N_SLOTS}u",
        f"#define ETP_STORE_NO_SLOT 0x{NO_SLOT:02X}u",
    ]
    off = 0
    for name, code in HEADER:
        L.append(f"#define ETP_STORE_{name.upper()}_OFF {off}u")
        off += struct.calcsize("<" + code)
    L += [
        "",
        "/* status codes of etp_store_* */",
        *[f"#define ETP_STORE_{s} {k}" for k, s in enumerate(STATUS)],
        "",
        "/* flash parameters: build parameters (deploy/build.py passes -D); these are the defaults */",
        *flash_defaults_c(),
        "",
        "/* what is saved: the persistent tensors (layout.persistent), in table order */",
        f"#define ETP_STORE_PAYLOAD {payload_bytes(lay)}u",
        f"#define ETP_STORE_N_TENSORS {len(idx)}u",
        "#define ETP_STORE_TENSORS {" + ", ".join(map(str, idx)) + "}",
        "#define ETP_STORE_MODEL_HASH {" + ", ".join(f"0x{b:02x}u" for b in hash_bytes(model_hash)) + "}",
        "",
        "#endif /* ETP_STORE_CFG_H */",
        "",
    ]
    return "\n".join(L)


def plan_rows(lay: Layout, page: int = DEFAULT_PAGE, prog: int = DEFAULT_PROG) -> list[tuple[str, str, int]]:
    """The two slots as (name, what, bytes), for the memory plan's "store" section."""
    geo = geometry(lay, page, prog)
    what = f"{geo.erases} x {page} B pages"
    return [(f"slot_{n}", what, geo.slot_bytes) for n in "AB"]


def wear_lines(geo: Geometry) -> list[str]:
    """The budget and wear figures of a save (printed with the memory plan)."""
    return [
        f"  weight store: 2 slots of {geo.slot_bytes:,d} B ({geo.erases} pages of {geo.page} B; payload "
        f"{geo.payload:,d} B + {geo.header_area} B header) = {geo.flash_bytes:,d} B of flash",
        f"    per save: {geo.erases} page erases + {geo.programs:,d} programs of {geo.prog} B; saves alternate "
        f"slots, so a page rated {ENDURANCE:,d} erase cycles lasts {geo.saves_per_endurance:,d} saves",
    ]
