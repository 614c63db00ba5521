"""The host side of the protocol: one :class:`Device` per serial connection.

The port is anything pyserial's ``serial_for_url`` opens (a board's ``/dev/ttyACM0``,
QEMU's or the host firmware's pty, ``socket://``, ``loop://``) or any object with
``read(n)``, ``write(b)`` and ``in_waiting`` (the fault relay wraps one).

Every request gets a sequence number; on a timeout the *same bytes* are sent again, up
to ``retries`` times. The device runs a command once and answers a repeat from its
cache, so a retried training step is never applied twice; responses for an older
sequence number (answers to duplicates) are skipped. ``Status.NO_SESSION`` means the
device was reset: :class:`DeviceReset` is raised and the caller decides how to recover.

The timeout is longer than the device's inter-byte idle timeout (protocol.IDLE_TIMEOUT_MS),
so the silence while the host waits always ends a truncated frame on the device, and the
frame sent after it is answered in the same wait; before resending, the host's own
parser drops what is left of a truncated answer the same way.

When the port fails (``OSError``, e.g. a USB adapter unplugged, or the fault relay's
``reconnect``) and ``reopen`` is given, the Device reconnects: a new port, HELLO (which
joins the device's open session and reports its last SEQ), and the unanswered frame is
sent again unchanged - the device answers it from its cache if it already ran it - so a
reconnect mid-sample loses and doubles nothing.
"""

from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass

import numpy as np

from deploy import protocol as P
from edgetp.errors import EdgetpError
from edgetp.fixed.contract import OPT_CODES


def open_port(url: str, baudrate: int = 115200):
    """A pyserial port for ``url`` (a device, a pty, or any pyserial URL)."""
    import serial

    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=0.02)
    except (serial.SerialException, ValueError) as exc:
        raise EdgetpError(f"cannot open serial port {url}: {exc}") from None


class LinkError(EdgetpError):
    """The device did not answer (after every retry)."""


class DeviceReset(LinkError):
    """The device answered NO_SESSION: it was reset and lost its state."""


class ProtocolError(LinkError):
    """The device's answer is malformed (a firmware bug or a foreign device)."""


class SessionLost(DeviceReset):
    """After a reconnect the device's session is not where this host left it (the device
    was reset, or another host used it): what the unanswered frame did is unknown."""


def _unpack(name: str, payload: bytes):
    try:
        return P.unpack(name, payload)
    except ValueError as exc:
        raise ProtocolError(f"malformed answer from the device: {exc}") from None


def _strings(data: bytes, n: int) -> list[str]:
    try:
        return P.read_lp_strings(data, n)
    except ValueError as exc:
        raise ProtocolError(f"malformed answer from the device: {exc}") from None


class DeviceError(EdgetpError):
    """The device answered a command with an error status."""

    def __init__(self, cmd, status: int, detail: int):
        self.cmd, self.status, self.detail = cmd, status, detail
        name = P.Status(status).name if status in P.Status._value2member_map_ else str(status)
        super().__init__(f"device answered {cmd_name(cmd)} with {name} (detail {detail})")


def cmd_name(cmd: int) -> str:
    return P.Cmd(cmd).name if cmd in P.Cmd._value2member_map_ else f"command 0x{int(cmd):02x}"


@dataclass
class Hello:
    version: int
    flags: int
    counter: int
    x_bytes: int
    n_in: int
    n_out: int
    max_payload: int
    n_tensors: int
    proto_hash: int
    counter_res: int
    joined: int
    last_seq: int
    gen_version: str
    model_hash: str
    board: str
    store: dict | None = None  # RSP_HELLO_STORE: has_store, boot, slot, valid, generation (None: not sent)

    @property
    def debug(self) -> bool:
        return bool(self.flags & P.Flag.DEBUG_CMDS)

    @property
    def counter_name(self) -> str:
        return P.Counter(self.counter).name.lower()


@dataclass
class TensorInfo:
    index: int
    name: str
    dtype: int
    writable: bool
    count: int

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(P.DTYPES[self.dtype])


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0
    stale: int = 0  # responses skipped (answers to duplicates or to older commands)
    resets: int = 0
    reconnects: int = 0  # the port failed and was opened again


class Device:
    """A session with one device. ``timeout``: seconds to wait for an answer before resending."""

    def __init__(self, port, timeout: float = 1.0, retries: int = 10, seed: int | None = None, reopen=None):
        if not timeout > 2 * P.IDLE_TIMEOUT_MS / 1000:
            raise EdgetpError(
                f"the answer timeout ({timeout:g} s) must exceed twice the device's inter-byte idle "
                f"timeout ({P.IDLE_TIMEOUT_MS} ms), or a truncated frame could hide the next one"
            )
        self.port = port
        self.reopen = reopen  # () -> a new port after the old one failed (None: a failure is an error)
        self.timeout = timeout
        self.retries = retries
        self.parser = P.FrameParser()
        self.seq = random.Random(seed).randrange(P.SEQ_MOD)
        self.info: Hello | None = None
        self.stats = LinkStats()
        self._tensors: list[TensorInfo] | None = None

    @classmethod
    def open(cls, url: str, baudrate: int = 115200, **kw) -> "Device":
        kw.setdefault("reopen", lambda: open_port(url, baudrate))
        return cls(open_port(url, baudrate), **kw)

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a dead port is not an error
            pass

    # ------------------------------------------------------------------ transport
    def _read_some(self) -> bytes:
        n = getattr(self.port, "in_waiting", 0) or 1
        return self.port.read(n)

    def request(self, cmd: P.Cmd, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send ``cmd`` and return the OK response's payload (after its status byte)."""
        seq = self.seq if cmd == P.Cmd.HELLO else (self.seq + 1) % P.SEQ_MOD
        frame = P.encode(int(cmd), seq, payload, self.parser.max_payload)
        wait = self.timeout if timeout is None else timeout
        self.stats.requests += 1
        for attempt in range(self.retries + 1):
            if attempt:
                # we waited in silence: a partial answer will not complete (its frames may hide ours)
                answer = self._answer(cmd, seq, self.parser.idle())
                if answer is not None:
                    return answer
                self.stats.retries += 1
            deadline = time.monotonic() + wait
            try:
                self.port.write(frame)
            except OSError as exc:
                self._reconnect(cmd, seq, exc)
                continue
            while time.monotonic() < deadline:
                try:
                    got = self.parser.feed(self._read_some())
                except OSError as exc:
                    self._reconnect(cmd, seq, exc)
                    break
                answer = self._answer(cmd, seq, got)
                if answer is not None:
                    return answer
        raise LinkError(f"no answer to {cmd_name(cmd)} (seq {seq}) after {self.retries + 1} tries of {wait:g} s each")

    def _answer(self, cmd, seq: int, frames: list) -> bytes | None:
        """The OK payload of the answer to ``cmd`` at ``seq`` among ``frames`` (None if absent);
        raises on an error status."""
        want = int(cmd) | P.RESPONSE_BIT
        for fr in frames:
            if fr.type != want or fr.seq != seq or not fr.payload:
                self.stats.stale += 1
                continue
            status = fr.payload[0]
            if status == P.Status.NO_SESSION:
                self.stats.resets += 1
                raise DeviceReset(f"the device was reset (it answered {cmd_name(cmd)} with NO_SESSION)")
            if status != P.Status.SEQ:  # the device ran (or cached) this SEQ
                self.seq = seq
            if status != P.Status.OK:
                detail = struct.unpack_from("<I", fr.payload, 1)[0] if len(fr.payload) >= 5 else 0
                raise DeviceError(cmd, status, detail)
            return fr.payload
        return None

    def _reconnect(self, cmd, seq: int, exc: OSError) -> None:
        """The port failed while ``cmd`` (SEQ ``seq``) waited for its answer: open a new port,
        HELLO (joining the open session), check that the session is where we left it."""
        if self.reopen is None:
            raise LinkError(f"the serial port failed during {cmd_name(cmd)}: {exc}") from None
        self.stats.reconnects += 1
        self.close()
        self.port = self.reopen()
        self.parser = P.FrameParser()
        if cmd == P.Cmd.HELLO:
            return  # resending the HELLO is all there is to do
        before = self.seq
        info = self.hello(join=True)
        if not info.joined or info.last_seq not in (before, seq):
            raise SessionLost(
                f"after reconnecting, the device's session is at SEQ {info.last_seq}"
                f"{'' if info.joined else ' (a new session: it was reset)'}, this host's at {before}: "
                f"whether {cmd_name(cmd)} ran is unknown"
            )
        self.seq = before  # resend the unanswered frame unchanged

    # ------------------------------------------------------------------ commands
    def hello(self, join: bool = False) -> Hello:
        """Identify the device. Without a session HELLO opens one at a random SEQ; in an
        open session it changes nothing and the host continues at the session's last SEQ
        (``join``: leave ``self.seq`` to the caller, who resends an unanswered frame)."""
        if not join:
            self.seq = random.randrange(P.SEQ_MOD)
        pl = self.request(P.Cmd.HELLO)
        f, rest = _unpack("RSP_HELLO", pl)
        gen, mh, board = _strings(rest, 3)
        f.pop("status")
        end = 0
        for _ in range(3):  # the strings are intact (_strings read them)
            end += 1 + rest[end]
        tail = rest[end:]
        store = P.unpack("RSP_HELLO_STORE", tail)[0] if len(tail) >= P.layout_struct("RSP_HELLO_STORE").size else None
        self.info = Hello(**f, gen_version=gen, model_hash=mh, board=board, store=store)
        if self.info.proto_hash != P.spec_hash():
            raise EdgetpError(
                f"the firmware speaks protocol {self.info.version} (hash 0x{self.info.proto_hash:08x}), "
                f"this host 0x{P.spec_hash():08x}: rebuild the firmware"
            )
        self.parser.max_payload = max(P.MAX_PAYLOAD, self.info.max_payload)  # what this build sends
        self.seq = self.info.last_seq  # the next command carries last_seq + 1
        self._tensors = None
        return self.info

    def init(self, seed: int) -> None:
        self.request(P.Cmd.INIT, P.pack("REQ_INIT", seed=seed & 0xFFFFFFFF))

    def reset_state(self) -> None:
        self.request(P.Cmd.RESET)

    def _x_bytes(self, x) -> bytes:
        info = self.info
        dt = "<i2" if info.x_bytes == 2 else "i1"
        x = np.asarray(x)
        if x.shape != (info.n_in,):
            raise EdgetpError(f"input frame must have {info.n_in} features, got shape {x.shape}")
        return x.astype(dt).tobytes()

    def load_x(self, x) -> None:
        data = self._x_bytes(x)
        xb = self.info.x_bytes
        chunk = (P.MAX_PAYLOAD - P.layout_struct("REQ_LOAD_X").size) // xb * xb
        for off in range(0, len(data), chunk):
            self.request(P.Cmd.LOAD_X, P.pack("REQ_LOAD_X", offset=off // xb) + data[off : off + chunk])

    def _step(self, cmd: P.Cmd, head: bytes, x, timeout) -> dict:
        data = self._x_bytes(x) if x is not None else b""
        if data and len(head) + len(data) > P.MAX_PAYLOAD:
            self.load_x(x)
            data = b""
        f, _ = _unpack("RSP_STEP", self.request(cmd, head + data, timeout))
        return f

    def infer(self, x=None, timeout=None) -> dict:
        """One inference step (on ``x``, or on the loaded frame); returns pred, cost, steps."""
        return self._step(P.Cmd.INFER, b"", x, timeout)

    def train(self, x, label: int, timeout=None) -> dict:
        """One training step with ``label``; returns pred, cost (port units), steps."""
        return self._step(P.Cmd.TRAIN, P.pack("REQ_TRAIN", label=int(label)), x, timeout)

    def predict(self) -> int:
        return _unpack("RSP_PREDICT", self.request(P.Cmd.PREDICT))[0]["pred"]

    def digest(self) -> dict:
        return _unpack("RSP_DIGEST", self.request(P.Cmd.DIGEST))[0]

    def det_step(self, d, start: bool = False) -> dict:
        """DET_STEP (an export with the detector): one frame's int32 increments ``d`` through etp_det_step
        (``start``: re-initialised first); its report and state, the window sums as ``sums`` (int32)."""
        d = np.asarray(d)
        if d.ndim != 1 or d.dtype.kind not in "iu" or np.abs(d.astype(np.int64)).max(initial=0) >= 1 << 31:
            raise EdgetpError("detector increments are one frame of int32 values, one per class")
        out, rest = _unpack(
            "RSP_DET_STEP",
            self.request(P.Cmd.DET_STEP, P.pack("REQ_DET_STEP", start=int(start)) + d.astype("<i4").tobytes()),
        )
        if len(rest) != 4 * len(d):
            raise ProtocolError(f"DET_STEP answered {len(rest)} bytes of window sums for {len(d)} classes")
        out["sums"] = np.frombuffer(rest, "<i4").astype(np.int32)
        return out

    def stream(self, pcm, start: bool = False, end: bool = False) -> tuple[dict, list]:
        """STREAM (an export with the frontend, a running maximum and the detector): at most STREAM_CHUNK int16
        samples of an endless stream (``start``: a new one; ``end``: it ends after them). Returns the answer's
        fields and the records (STREAM_FRAME fields) of the frames it finished."""
        pcm = np.asarray(pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16 or pcm.size > P.STREAM_CHUNK:
            raise EdgetpError(f"a STREAM command takes at most {P.STREAM_CHUNK} int16 samples")
        flags = (P.STREAM_START if start else 0) | (P.STREAM_END if end else 0)
        out, rest = _unpack(
            "RSP_STREAM", self.request(P.Cmd.STREAM, P.pack("REQ_STREAM", flags=flags) + pcm.astype("<i2").tobytes())
        )
        size = P.layout_struct("STREAM_FRAME").size
        if len(rest) != size * out["frames"]:
            raise ProtocolError(f"STREAM answered {len(rest)} bytes for {out['frames']} frames")
        return out, [P.unpack("STREAM_FRAME", rest[size * k : size * (k + 1)])[0] for k in range(out["frames"])]

    def counters(self, clear: bool = False) -> dict:
        return _unpack("RSP_COUNTERS", self.request(P.Cmd.COUNTERS, P.pack("REQ_COUNTERS", clear=int(clear))))[0]

    def set_lr(self, m: int, e: int) -> None:
        self.request(P.Cmd.SET_LR, P.pack("REQ_SET_LR", m=m, e=e))

    def set_optimizer(self, kind: str, beta_shift: int, train: str, clip: int = -1) -> None:
        """SET_OPTIMIZER (debug builds): ``kind`` one of edgetp.fixed.update_q.KINDS (or a raw code, to test the
        device's refusals), ``train`` "all" or "readout", ``clip`` -1 for none."""
        self.request(
            P.Cmd.SET_OPTIMIZER,
            P.pack(
                "REQ_SET_OPTIMIZER",
                kind=OPT_CODES.get(kind, kind),
                beta_shift=beta_shift,
                train_all=int(train == "all"),
                clip=clip,
            ),
        )

    def save(self, timeout=None) -> dict:
        """SAVE: the persistent state into the weight store; slot, generation, erases, programs."""
        return _unpack("RSP_SAVE", self.request(P.Cmd.SAVE, timeout=timeout))[0]

    def factory_reset(self, timeout=None) -> dict:
        """FACTORY_RESET: both slots erased, the shipped weights (etp_init(0))."""
        return _unpack("RSP_SAVE", self.request(P.Cmd.FACTORY_RESET, timeout=timeout))[0]

    def tensors(self) -> list[TensorInfo]:
        if self._tensors is None:
            out = []
            for i in range(self.info.n_tensors):
                f, rest = _unpack(
                    "RSP_TENSOR_INFO", self.request(P.Cmd.TENSOR_INFO, P.pack("REQ_TENSOR_INFO", index=i))
                )
                if f["dtype"] not in P.DTYPES:
                    raise ProtocolError(f"tensor {i}: unknown dtype code {f['dtype']}")
                out.append(TensorInfo(i, _strings(rest, 1)[0], f["dtype"], bool(f["writable"]), f["count"]))
            self._tensors = out
        return self._tensors

    def read_tensor(self, i: int) -> np.ndarray:
        t = self.tensors()[i]
        total = t.count * t.np_dtype.itemsize
        chunk = P.MAX_PAYLOAD - P.layout_struct("RSP_READ_TENSOR").size
        buf = bytearray()
        while len(buf) < total:
            n = min(chunk, total - len(buf))
            buf += self.request(P.Cmd.READ_TENSOR, P.pack("REQ_READ_TENSOR", index=i, offset=len(buf), length=n))[1:]
        return np.frombuffer(bytes(buf), dtype=t.np_dtype).copy()

    def write_tensor(self, i: int, values) -> None:
        t = self.tensors()[i]
        data = np.ascontiguousarray(values).astype(t.np_dtype).tobytes()
        if len(data) != t.count * t.np_dtype.itemsize:
            raise EdgetpError(f"tensor {t.name} has {t.count} elements, got {np.size(values)}")
        chunk = P.MAX_PAYLOAD - P.layout_struct("REQ_WRITE_TENSOR").size
        for off in range(0, len(data), chunk):
            self.request(P.Cmd.WRITE_TENSOR, P.pack("REQ_WRITE_TENSOR", index=i, offset=off) + data[off : off + chunk])

    def read_state(self) -> bytes:
        """Every state tensor's bytes in table order (READ_STATE, debug builds)."""
        total = sum(t.count * t.np_dtype.itemsize for t in self.tensors())
        chunk = max(P.MAX_PAYLOAD, self.info.max_payload) - P.layout_struct("RSP_READ_STATE").size
        buf = bytearray()
        while len(buf) < total:
            n = min(chunk, total - len(buf))
            buf += self.request(P.Cmd.READ_STATE, P.pack("REQ_READ_STATE", offset=len(buf), length=n))[1:]
        return bytes(buf)

    def state_tensors(self, blob: bytes | None = None) -> list[tuple[str, np.ndarray]]:
        """(name, flat array) of every state tensor, from ``blob`` (read_state's) or read now."""
        blob = self.read_state() if blob is None else blob
        out, off = [], 0
        for t in self.tensors():
            n = t.count * t.np_dtype.itemsize
            out.append((t.name, np.frombuffer(blob[off : off + n], dtype=t.np_dtype)))
            off += n
        return out
