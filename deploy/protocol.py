"""The serial protocol between a host and an edgetp device: the one definition.

Everything both sides must agree on lives here; ``deploy/gen_proto.py`` writes the C
header ``etp_proto.h`` from it (never edit that header by hand).

Frame (all integers little-endian)::

    offset  size  field
    0       2     SYNC   0xA5 0x5A
    2       2     LEN    payload length, 0..MAX_PAYLOAD (a longer LEN is a bad header)
    4       1     TYPE   command (host -> device) or command | RESPONSE_BIT (device -> host)
    5       2     SEQ    sequence number (the response carries the command's)
    7       1     HCRC   CRC-8 (poly 0x07, init 0) over bytes 2..6
    8       LEN   PAYLOAD
    8+LEN   4     CRC    CRC-32 (zlib's) over bytes 2..8+LEN-1

The header CRC lets a receiver drop a corrupted header at once (and so never wait for
a payload whose length was corrupted); the frame CRC covers everything after the sync.
A receiver that finds a bad header or frame CRC resumes its search for SYNC at the byte
after the rejected SYNC, so one damaged frame never hides the next one. A frame's bytes
follow each other without a pause longer than ``IDLE_TIMEOUT_MS``: after such a silence
a receiver drops the partial frame it holds (``FrameParser.idle``: the frames complete
in its buffer are still taken, the rest is dropped), so a truncated frame never hides
a complete one that follows.

Sequence numbers (``docs/deploy.md``): HELLO opens a session at its SEQ when none is
open (after boot); inside an open session HELLO is answered (``joined`` = 1 and the
session's ``last_seq``) and changes nothing, so a replayed frame stays a repeat or out
of sequence whatever HELLOs come in between, and a host that reconnects resends its
unanswered frame unchanged. In a session the device executes a command only if its SEQ is the last one + 1
(mod 2^16), answers a repeat of the last command (same SEQ and CRC) with the cached response *without*
executing it again (so a retried training step is never applied twice), and rejects
anything else with ``Status.SEQ``. Before a session exists every command but HELLO is
answered ``Status.NO_SESSION`` (which is also how the host notices a device reset).
"""

from __future__ import annotations

import enum
import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from edgetp.fixed import contract as _contract

PROTOCOL_VERSION = 1
SYNC = b"\xa5\x5a"
HEADER_SIZE = 8  # sync, len, type, seq, hcrc
CRC_SIZE = 4
MAX_PAYLOAD = 256
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
# A build for a link that carries more may raise the payload limit up to this (the host build
# on pipes, verify-c: the whole state after every step in a few frames); HELLO's max_payload
# says which, and the host reads with it. Every command's request fits MAX_PAYLOAD.
PIPE_MAX_PAYLOAD = 32768
RESPONSE_BIT = 0x80
SEQ_MOD = 1 << 16
MAX_NAME = 32  # longest tensor name / id string sent
IDLE_TIMEOUT_MS = 20  # a pause this long inside a frame ends it (the receiver drops the partial frame)


class Cmd(enum.IntEnum):
    """Commands. ``DEBUG_CMDS`` are compiled out by the locked build (ETP_PROTO_LOCKED=1)."""

    HELLO = 0x01  # identify firmware and model; opens a session
    INIT = 0x02  # etp_init(seed): weights back to the image's, optimizer and counters reset
    RESET = 0x03  # etp_reset_state(): start of a sample
    LOAD_X = 0x04  # write a chunk of the input frame buffer
    INFER = 0x05  # etp_infer_step on the frame buffer (optionally loaded by this frame)
    TRAIN = 0x06  # etp_train_step with a label (same input rule)
    PREDICT = 0x07  # etp_predict()
    DIGEST = 0x08  # etp_state_digest() and step counts
    COUNTERS = 0x09  # cost counters (instructions or cycles per step), RAM, link errors
    SET_LR = 0x0A  # learning-rate code (mantissa, exponent)
    TENSOR_INFO = 0x10  # debug: name, dtype, writable, count of state tensor i
    READ_TENSOR = 0x11  # debug: bytes of a state tensor
    WRITE_TENSOR = 0x12  # debug: overwrite bytes of a writable state tensor
    READ_STATE = 0x13  # debug: bytes of every state tensor in table order (verify-c reads all after each step)
    SET_OPTIMIZER = 0x14  # debug: etp_set_optimizer (verify-c's scripts switch optimizers between samples)
    READ_FE = 0x15  # debug, frontend trace builds: one record of the audio frontend's last utterance
    SAVE = 0x20  # weight store: save the persistent state to flash (kept in the locked build)
    FACTORY_RESET = 0x21  # weight store: erase both slots, etp_init(0): the shipped weights again
    AUDIO_PCM = 0x22  # append int16 PCM samples to the device's audio frontend (start=1: a new utterance)
    AUDIO_RUN = 0x23  # finish the utterance, run its frames through the network (label, or AUDIO_NO_LABEL: infer)
    DET_STEP = 0x24  # one frame's readout increments through the keyword detector (etp_det_step); answers its state
    STREAM = 0x25  # PCM of an endless stream: per finished frame the frontend, the network step and the detector


DEBUG_CMDS = (Cmd.TENSOR_INFO, Cmd.READ_TENSOR, Cmd.WRITE_TENSOR, Cmd.READ_STATE, Cmd.SET_OPTIMIZER, Cmd.READ_FE)


class Status(enum.IntEnum):
    OK = 0
    BAD_LEN = 1  # payload length wrong for the command
    BAD_ARG = 2  # an argument out of range (label, index, offset)
    UNKNOWN = 3  # unknown command, or compiled out (locked build)
    SEQ = 4  # out of sequence; detail = the SEQ the device expects
    NO_SESSION = 5  # no HELLO since boot (the device was reset)
    MODEL = 6  # the model API returned an error; detail = its etp_status_t
    READONLY = 7  # tensor not writable
    UNSUPPORTED = 8  # the model's API lacks this (e.g. SET_LR)
    STORE = 0x10  # the weight store failed; detail = its status (firmware_gen.store.STATUS)


class Counter(enum.IntEnum):
    """What the cost counters count (the port layer decides)."""

    NONE = 0
    INSTRUCTIONS = 1  # QEMU -icount: exact retired instructions (to COUNTER_RES)
    CYCLES = 2  # DWT CYCCNT on a real core
    NANOSECONDS = 3  # host build: clock_gettime


class Flag(enum.IntFlag):
    """HELLO's feature flags."""

    DEBUG_CMDS = 1  # the DEBUG_CMDS present (TENSOR_INFO, READ_TENSOR, ...)
    SET_LR = 2  # the model API takes a learning-rate code
    RESET_CMD = 4  # reserved


# etp_tensor_t.dtype -> the little-endian NumPy type, from the contract's one dtype table
DTYPES = {code: np.dtype(nt).newbyteorder("<").str for code, _ctype, nt in _contract.DTYPES.values()}

# Payload layouts: (field, struct code). A trailing variable part (data, strings) is
# described in the comment; the C side gets <LAYOUT>_<FIELD>_OFF and <LAYOUT>_SIZE.
LAYOUTS: dict[str, list[tuple[str, str]]] = {
    "REQ_INIT": [("seed", "I")],
    "REQ_LOAD_X": [("offset", "H")],  # + element bytes
    "REQ_INFER": [],  # + optionally a whole input frame
    "REQ_TRAIN": [("label", "H")],  # + optionally a whole input frame
    "REQ_COUNTERS": [("clear", "B")],
    "REQ_SET_LR": [("m", "H"), ("e", "h")],  # lr ~= m * 2^-e (edgetp.fixed.update_q.lr_code)
    "REQ_TENSOR_INFO": [("index", "H")],
    "REQ_READ_TENSOR": [("index", "H"), ("offset", "I"), ("length", "H")],
    "REQ_WRITE_TENSOR": [("index", "H"), ("offset", "I")],  # + bytes
    "REQ_READ_STATE": [("offset", "I"), ("length", "H")],  # offset into the tensors' bytes, one after another
    "REQ_SET_OPTIMIZER": [("kind", "B"), ("beta_shift", "B"), ("train_all", "B"), ("clip", "b")],
    "RSP_ERR": [("status", "B"), ("detail", "I")],
    "RSP_HELLO": [
        ("status", "B"),
        ("version", "B"),
        ("flags", "B"),
        ("counter", "B"),
        ("x_bytes", "B"),
        ("n_in", "H"),
        ("n_out", "H"),
        ("max_payload", "H"),
        ("n_tensors", "H"),
        ("proto_hash", "I"),
        ("counter_res", "H"),
        ("joined", "B"),
        ("last_seq", "H"),
    ],  # joined: 1 = a session was open (HELLO changed nothing)
    # + 3 strings (u8 length + bytes): gen version, model hash, board
    "RSP_OK": [("status", "B")],
    "RSP_STEP": [("status", "B"), ("pred", "H"), ("cost", "I"), ("steps", "I")],
    "RSP_PREDICT": [("status", "B"), ("pred", "H")],
    "RSP_DIGEST": [("status", "B"), ("digest", "I"), ("train_steps", "I"), ("infer_steps", "I")],
    "RSP_COUNTERS": [
        ("status", "B"),
        ("counter", "B"),
        ("counter_res", "H"),
        ("infer_n", "I"),
        ("infer_last", "I"),
        ("infer_min", "I"),
        ("infer_max", "I"),
        ("infer_sum", "Q"),
        ("train_n", "I"),
        ("train_last", "I"),
        ("train_min", "I"),
        ("train_max", "I"),
        ("train_sum", "Q"),
        ("ram_static", "I"),
        ("stack_size", "I"),
        ("stack_used", "I"),
        ("frames_ok", "I"),
        ("hdr_errors", "I"),
        ("crc_errors", "I"),
        ("seq_errors", "I"),
        ("repeats", "I"),
        ("bad_cmds", "I"),
        ("idle_drops", "I"),
    ],
    "RSP_TENSOR_INFO": [("status", "B"), ("dtype", "B"), ("writable", "B"), ("count", "I")],  # + name (u8 len + bytes)
    "RSP_READ_TENSOR": [("status", "B")],  # + bytes
    "RSP_READ_STATE": [("status", "B")],  # + bytes
    # HELLO's weight-store report, after its 3 strings: has_store 0/1; boot status (firmware_gen.store.STATUS);
    # slot loaded at boot or by the last save (0, 1, 0xFF none); bit k of valid: slot k valid at boot
    "RSP_HELLO_STORE": [("has_store", "B"), ("boot", "B"), ("slot", "B"), ("valid", "B"), ("generation", "I")],
    "RSP_SAVE": [("status", "B"), ("slot", "B"), ("generation", "I"), ("erases", "I"), ("programs", "I")],
    "REQ_AUDIO_PCM": [("start", "B")],  # + int16 samples (at most AUDIO_CHUNK)
    "RSP_AUDIO_PCM": [("status", "B"), ("frames", "H"), ("cost", "I")],  # frames computed so far, this chunk's cost
    "REQ_AUDIO_RUN": [("label", "H")],
    # READ_FE (verify-c --frontend; a build with ETP_FE_TRACE): what = FE_FRAME: frame t's block exponent i32,
    # power i64 x N_BINS, mel i64 x N_MELS, log-mel i16 x N_MELS as computed; FE_END (after AUDIO_RUN): the
    # maximum i32, then L i16 x N_FRAMES x N_MELS; FE_OUT: frame t's features i32 x N_FEATURES, then its inputs
    "REQ_READ_FE": [("what", "B"), ("frame", "H")],
    "RSP_READ_FE": [("status", "B")],  # + the record
    "RSP_AUDIO_RUN": [
        ("status", "B"),
        ("pred", "H"),
        ("steps", "I"),
        ("fe_finish", "I"),
        ("fe_frames", "I"),
        ("net_sum", "I"),
        ("net_max", "I"),
        ("x_crc", "I"),
        ("slot_max", "I"),
        ("learn_n", "I"),
        ("learn_sum", "I"),
        ("learn_max", "I"),
    ],
    # fe_finish: the end of the utterance (last frames, maximum, L); fe_frames: delta and input scaling of
    # every frame; net_sum/net_max: the network steps; x_crc: CRC-32 of the network's inputs (int16 LE);
    # slot_max: the largest unit of that work a real-time device runs in one 10 ms slot (beside a hop of the
    # next audio): a padded frame (the last with the finish's rest) or one frame's input + network step;
    # learn_n/learn_sum/learn_max: the training steps that learned (the optimizer's step count moved)
    # DET_STEP (an export with the detector): start=1 re-initialises it first; + int32 increments x classes.
    # The answer: the report (fired 0/1, class, margin) and the whole state of edgetp.stream.detector.DetState:
    # frames seen t, ring row pos, hold, latch (-1 none), CRC-32 of the ring (int32 LE, row-major), then the
    # window sums int32 x classes; cost: the step's counter (instructions under QEMU -icount)
    "REQ_DET_STEP": [("start", "B")],
    "RSP_DET_STEP": [
        ("status", "B"),
        ("fired", "B"),
        ("cls", "h"),
        ("margin", "i"),
        ("t", "I"),
        ("pos", "I"),
        ("hold", "i"),
        ("latch", "i"),
        ("buf_crc", "I"),
        ("cost", "I"),
    ],
    # STREAM (an export with the frontend, a running maximum, and the detector; deploy/firmware/etp_listen.h):
    # flags STREAM_START (a new stream: the network's state zeroed, detector and frontend started) and STREAM_END
    # (the stream ends after these samples, in whole hops) + int16 samples (at most STREAM_CHUNK). The answer:
    # the frames finished (at most what one payload holds; more = 1: frames wait, send STREAM without samples),
    # the frontend's cost of the hop this command completed, then one STREAM_FRAME record per frame
    "REQ_STREAM": [("flags", "B")],
    "RSP_STREAM": [("status", "B"), ("frames", "B"), ("more", "B"), ("hop_cost", "I")],
    # per frame: CRC-32 of the network's input x (LE), of the readout increments d (int32 LE), of the detector's
    # t, pos, hold, latch and window sums (int32 LE); the report (fired, class, margin); the counter costs of
    # delta + input scaling, of the inference step, of the detector step
    "STREAM_FRAME": [
        ("x_crc", "I"),
        ("d_crc", "I"),
        ("det_crc", "I"),
        ("fired", "B"),
        ("cls", "h"),
        ("margin", "i"),
        ("fe", "I"),
        ("net", "I"),
        ("det", "I"),
    ],
}
AUDIO_NO_LABEL = 0xFFFF
FE_FRAME, FE_END, FE_OUT = 0, 1, 2  # REQ_READ_FE.what
AUDIO_CHUNK = (MAX_PAYLOAD - 1) // 2  # samples per AUDIO_PCM frame (a build with a larger payload: more)
STREAM_START, STREAM_END = 1, 2  # REQ_STREAM.flags
STREAM_CHUNK = (MAX_PAYLOAD - 1) // 2  # samples per STREAM frame: less than a hop, so one completes at most


def layout_struct(name: str) -> struct.Struct:
    return struct.Struct("<" + "".join(code for _, code in LAYOUTS[name]))


def pack(name: str, **fields) -> bytes:
    return layout_struct(name).pack(*(fields[f] for f, _ in LAYOUTS[name]))


def unpack(name: str, payload: bytes) -> tuple[dict, bytes]:
    """(fields, rest) of a payload laid out as ``name``; raises ValueError if too short."""
    st = layout_struct(name)
    if len(payload) < st.size:
        raise ValueError(f"{name}: payload of {len(payload)} bytes, need {st.size}")
    vals = st.unpack_from(payload)
    return dict(zip((f for f, _ in LAYOUTS[name]), vals)), payload[st.size :]


def spec_hash() -> int:
    """CRC-32 of the canonical definition: a firmware generated from another protocol.py differs."""
    spec = {
        "v": PROTOCOL_VERSION,
        "sync": SYNC.hex(),
        "max": MAX_PAYLOAD,
        "idle_ms": IDLE_TIMEOUT_MS,
        "cmd": {c.name: int(c) for c in Cmd},
        "status": {s.name: int(s) for s in Status},
        "layouts": LAYOUTS,
    }
    return zlib.crc32(json.dumps(spec, sort_keys=True).encode())


# ----------------------------------------------------------------------------- CRCs
def crc8(data: bytes, crc: int = 0) -> int:
    """CRC-8, polynomial 0x07, init 0, no reflection (CRC-8/SMBUS)."""
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def crc32(data: bytes, crc: int = 0) -> int:
    return zlib.crc32(data, crc)


# ----------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.type & RESPONSE_BIT)

    @property
    def cmd(self) -> int:
        return self.type & ~RESPONSE_BIT & 0xFF

    def status(self) -> int | None:
        return self.payload[0] if self.is_response and self.payload else None


def encode(ftype: int, seq: int, payload: bytes = b"", max_payload: int = MAX_PAYLOAD) -> bytes:
    """One frame's bytes (``max_payload``: the receiver's limit, MAX_PAYLOAD unless its HELLO said more)."""
    if len(payload) > max_payload:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the maximum {max_payload}")
    if not (0 <= ftype <= 0xFF and 0 <= seq < SEQ_MOD):
        raise ValueError(f"type {ftype} or seq {seq} out of range")
    head = struct.pack("<HBH", len(payload), ftype, seq)
    body = head + bytes([crc8(head)]) + payload
    return SYNC + body + struct.pack("<I", crc32(body))


class FrameParser:
    """Incremental frame parser with resynchronisation (the C twin: etp_link.c).

    ``feed(data)`` returns the complete, CRC-valid frames found; bytes that are not part
    of a valid frame are skipped and counted in ``hdr_errors``/``crc_errors``/``skipped``.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray()
        self.hdr_errors = self.crc_errors = self.skipped = self.frames = self.idle_drops = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out = []
        while True:
            fr = self._one()
            if fr is None:
                return out
            out.append(fr)

    def idle(self) -> list[Frame]:
        """The line was silent for IDLE_TIMEOUT_MS: no partial frame will be completed.
        Returns the frames complete in the buffer; every byte that is not part of one is
        dropped (a partial frame is counted in ``idle_drops``)."""
        out = []
        while self.buf:
            self.idle_drops += 1
            self._drop(1)
            out += self.feed(b"")
        return out

    def _drop(self, n: int) -> None:
        self.skipped += n
        del self.buf[:n]

    def _one(self) -> Frame | None:
        buf = self.buf
        while True:
            i = buf.find(SYNC)
            if i < 0:  # keep a trailing first sync byte
                self._drop(len(buf) - 1 if buf[-1:] == SYNC[:1] else len(buf))
                return None
            if i:
                self._drop(i)
            if len(buf) < HEADER_SIZE:
                return None
            n, ftype, seq = struct.unpack_from("<HBH", buf, 2)
            if crc8(bytes(buf[2:7])) != buf[7] or n > self.max_payload:
                self.hdr_errors += 1
                self._drop(1)
                continue
            total = HEADER_SIZE + n + CRC_SIZE
            if len(buf) < total:
                return None
            (crc,) = struct.unpack_from("<I", buf, HEADER_SIZE + n)
            if crc32(bytes(buf[2 : HEADER_SIZE + n])) != crc:
                self.crc_errors += 1
                self._drop(1)
                continue
            fr = Frame(ftype, seq, bytes(buf[HEADER_SIZE : HEADER_SIZE + n]))
            del buf[:total]
            self.frames += 1
            return fr


def lp_string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return bytes([min(len(b), 255)]) + b[:255]


def read_lp_strings(data: bytes, n: int) -> list[str]:
    """``n`` length-prefixed strings from ``data`` (ValueError if short)."""
    out, i = [], 0
    for _ in range(n):
        if i >= len(data) or i + 1 + data[i] > len(data):
            raise ValueError("truncated string field")
        out.append(data[i + 1 : i + 1 + data[i]].decode("utf-8", "replace"))
        i += 1 + data[i]
    return out
