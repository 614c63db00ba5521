"""The serial link against an attacker on the UART (issue 18): each attack that broke a
promise of docs/deploy.md is replayed here with raw frames (so that it also runs against
an older firmware) on the normal and the locked build, on the host pty and on QEMU:

1. HELLO at SEQ - 1, then a captured TRAIN frame: applied again?
2. SET_LR outside the range fixed at export (255, -64): accepted?
3. a lone header announcing 256 bytes: does it hide the frames that follow?
4. a 200-byte HELLO; optimizer statistics written out of range (UBSan build); the
   locked build's exposed commands (DIGEST stays: the HIL verifies locked devices by it).
"""

import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import ScriptedPort, device  # noqa: E402

from deploy import protocol as P  # noqa: E402
from deploy.host import LinkError  # noqa: E402
from deploy.reference import IntReference, export_c, int_features, tiny_qmodel  # noqa: E402
from edgetp.fixed.device import DeviceConfig  # noqa: E402

QEMU = pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")  # tests/conftest.py: fails when missing with CI=true
pytestmark = pytest.mark.needs("cc")
BUILDS = [
    ("host", False),
    ("host", True),
    pytest.param("qemu", False, marks=QEMU),
    pytest.param("qemu", True, marks=QEMU),
]
IDS = ["host", "host-locked", "qemu", "qemu-locked"]


# ------------------------------------------------------------------ raw frames
def exchange(dev, frame: bytes, cmd: int, wait: float = 2.0):
    """Send raw bytes; return the first response to ``cmd`` (None if none came in ``wait`` s
    or the port failed: the firmware died)."""
    end = time.monotonic() + wait
    try:
        dev.port.write(frame)
        while time.monotonic() < end:
            for fr in dev.parser.feed(dev.port.read(256)):
                if fr.type == cmd | P.RESPONSE_BIT:
                    return fr
    except OSError:
        return None
    return None


def status(fr) -> int:
    assert fr is not None, "no answer"
    return fr.payload[0]


def detail(fr) -> int:
    return struct.unpack_from("<I", fr.payload, 1)[0]


def command(dev, cmd: int, payload: bytes = b"", seq: int | None = None):
    """One command at the device's next SEQ (learned from a SEQ answer if need be)."""
    seq = (dev.seq + 1) % P.SEQ_MOD if seq is None else seq
    fr = exchange(dev, P.encode(cmd, seq, payload), cmd)
    if fr is not None and status(fr) == P.Status.SEQ:
        seq = detail(fr)
        fr = exchange(dev, P.encode(cmd, seq, payload), cmd)
    dev.seq = seq
    return fr


def raw_hello(dev, seq: int, payload: bytes = b""):
    return exchange(dev, P.encode(P.Cmd.HELLO, seq, payload), P.Cmd.HELLO)


def open_session(dev, seq: int = 1000) -> None:
    assert status(raw_hello(dev, seq)) == P.Status.OK
    dev.seq = seq


def digest(dev) -> tuple[int, int]:
    fr = command(dev, P.Cmd.DIGEST)
    assert status(fr) == P.Status.OK
    return struct.unpack_from("<II", fr.payload, 1)


# ------------------------------------------------------------------ 1. replay across HELLO
@pytest.mark.parametrize("target,locked", BUILDS, ids=IDS)
def test_a_captured_training_frame_is_not_applied_again_after_a_hello(target, locked):
    x = (np.arange(8) * 77).astype("<i2").tobytes()
    with device(target, locked=locked) as (_, dev):
        open_session(dev)
        assert status(command(dev, P.Cmd.INIT, P.pack("REQ_INIT", seed=3))) == P.Status.OK
        assert status(command(dev, P.Cmd.RESET)) == P.Status.OK
        seq = (dev.seq + 1) % P.SEQ_MOD
        captured = P.encode(P.Cmd.TRAIN, seq, P.pack("REQ_TRAIN", label=1) + x)
        first = exchange(dev, captured, P.Cmd.TRAIN)
        assert status(first) == P.Status.OK
        dev.seq = seq
        d0 = digest(dev)
        assert d0[1] == 1
        # the attacker: HELLO at the captured frame's SEQ - 1, then the captured frame
        assert status(raw_hello(dev, (seq - 1) % P.SEQ_MOD)) == P.Status.OK
        again = exchange(dev, captured, P.Cmd.TRAIN)
        assert status(again) == P.Status.SEQ  # DIGEST ran after it: out of sequence
        # ... and right after the frame itself: a repeat, answered from the cache
        assert status(command(dev, P.Cmd.RESET)) == P.Status.OK
        seq = (dev.seq + 1) % P.SEQ_MOD
        captured = P.encode(P.Cmd.TRAIN, seq, P.pack("REQ_TRAIN", label=2) + x)
        first = exchange(dev, captured, P.Cmd.TRAIN)
        assert status(raw_hello(dev, (seq - 1) % P.SEQ_MOD)) == P.Status.OK
        again = exchange(dev, captured, P.Cmd.TRAIN)
        assert again == first  # the cached answer, the step not run again
        dev.seq = seq
        assert digest(dev)[1] == 2  # two frames sent, two applied


@pytest.mark.parametrize("locked", [False, True], ids=["normal", "locked"])
def test_a_second_host_joins_the_open_session_and_continues(locked):
    """A host that starts afresh (no memory of the SEQ) joins the session HELLO reports."""
    import serial

    from deploy.host import Device

    with device(locked=locked) as (t, dev):
        dev.hello()
        dev.init(1)
        dev.train(np.arange(8), 1)
        other = Device(serial.serial_for_url(t.url, timeout=0.01), timeout=0.1, seed=99)
        try:
            info = other.hello()
            assert info.joined == 1 and info.last_seq == dev.seq == other.seq
            assert other.digest()["train_steps"] == 1
            other.train(np.arange(8), 2)
            assert other.digest()["train_steps"] == 2
        finally:
            other.close()


def test_a_reconnect_after_a_reset_says_the_session_is_lost():
    """The port fails and meanwhile the device was reset: the reconnect's HELLO opens a new
    session, so whether the unanswered frame ran is unknown - SessionLost (a DeviceReset:
    the HIL restores the state as after a reset)."""
    from deploy.host import DeviceReset, SessionLost

    with device(faults="reconnect=5,seed=1") as (t, dev):
        dev.hello()
        dev.init(1)
        dev.train(np.arange(8), 1)  # writes 1..3
        dev.digest()  # write 4
        t.reset()
        time.sleep(0.2)
        with pytest.raises(SessionLost, match="a new session: it was reset") as e:
            dev.train(np.arange(8), 1)  # write 5: cut; the reconnect's HELLO opens a session
        assert isinstance(e.value, DeviceReset) and dev.stats.reconnects == 1
        dev.hello()  # joins the session that HELLO opened
        dev.init(1)
        assert dev.digest()["train_steps"] == 0


@pytest.mark.parametrize("locked", [False, True], ids=["normal", "locked"])
def test_a_captured_session_replays_after_a_reset(locked):
    """What docs/deploy.md's threat model says: SEQ orders the frames of one session, so after a
    reset the captured bytes of a whole session (HELLO, INIT, RESET, TRAIN) run again, to the same
    state. (Forging new frames does as much; a per-boot nonce would stop only this.)"""
    x = (np.arange(8) * 77).astype("<i2").tobytes()
    frames = [
        (P.Cmd.HELLO, b""),
        (P.Cmd.INIT, P.pack("REQ_INIT", seed=3)),
        (P.Cmd.RESET, b""),
        (P.Cmd.TRAIN, P.pack("REQ_TRAIN", label=1) + x),
        (P.Cmd.TRAIN, P.pack("REQ_TRAIN", label=1) + x),
    ]
    captured = [(cmd, P.encode(cmd, 1000 + k, payload)) for k, (cmd, payload) in enumerate(frames)]
    with device(locked=locked) as (t, dev):
        for cmd, raw in captured:
            assert status(exchange(dev, raw, cmd)) == P.Status.OK
        dev.seq = 1000 + len(frames) - 1
        learnt = digest(dev)
        assert learnt[1] == 2
        t.reset()
        time.sleep(0.2)
        for cmd, raw in captured:  # the same bytes, after the reset
            assert status(exchange(dev, raw, cmd)) == P.Status.OK
        dev.seq = 1000 + len(frames) - 1
        assert digest(dev) == learnt


# ------------------------------------------------------------------ 2. learning-rate range
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    qm = tiny_qmodel(n_in=12, hidden=(10,), n_out=4)
    cfg = DeviceConfig(lr=1e-3, lr_min=1e-5)  # lr_max: the export's lr
    cdir = export_c(qm, tmp_path_factory.mktemp("tiny") / "model", cfg)
    return qm, cfg, cdir


@pytest.mark.parametrize("target,locked", BUILDS, ids=IDS)
def test_set_lr_outside_the_exported_range_is_refused(tiny, target, locked):
    qm, cfg, cdir = tiny
    xs = int_features(qm, 1.5 * np.random.default_rng(2).standard_normal((5, 12)))
    ref = IntReference(qm, cfg)
    ref.init(4)
    with device(target, locked=locked, model_dir=cdir, timeout=0.1 if target == "host" else 2.0) as (_, dev):
        open_session(dev)
        assert status(command(dev, P.Cmd.INIT, P.pack("REQ_INIT", seed=4))) == P.Status.OK
        before = digest(dev)[0]
        assert before == ref.digest()
        fr = command(dev, P.Cmd.SET_LR, P.pack("REQ_SET_LR", m=255, e=-64))
        assert status(fr) == P.Status.BAD_ARG, "an unlimited learning rate was accepted"
        assert digest(dev)[0] == before  # opt_cfg unchanged
        # the attack's training frames now learn at the export's rate, as the reference does
        assert status(command(dev, P.Cmd.RESET)) == P.Status.OK
        for x in xs:
            fr = command(dev, P.Cmd.TRAIN, P.pack("REQ_TRAIN", label=3) + x.astype("<i2").tobytes())
            assert status(fr) == P.Status.OK
        ref.dev.reset()
        for x in xs:
            ref.dev.train(x, 3)
        assert digest(dev)[0] == ref.digest()
        m, e = cfg.lr_code  # the bounds themselves are accepted
        assert status(command(dev, P.Cmd.SET_LR, P.pack("REQ_SET_LR", m=m, e=e))) == P.Status.OK
        assert status(command(dev, P.Cmd.SET_LR, P.pack("REQ_SET_LR", m=m + 1, e=e))) == P.Status.BAD_ARG
        assert status(command(dev, P.Cmd.SET_LR, P.pack("REQ_SET_LR", m=0, e=0))) == P.Status.BAD_ARG


def test_the_c_range_check_is_the_twin_of_python(tiny):
    """etp_set_lr accepts exactly the codes DeviceConfig.lr_in_range accepts (around both bounds)."""
    from edgetp.fixed.update_q import lr_code

    qm, cfg, cdir = tiny
    mlo, elo = lr_code(cfg.lr_min)
    mhi, ehi = lr_code(cfg.lr_max)
    codes = {
        (m, e)
        for e0 in (elo, ehi)
        for e in range(e0 - 9, e0 + 10)
        for m in (0, 1, 2, 63, 64, 65, 127, 128, mlo - 1, mlo, mlo + 1, mhi - 1, mhi, mhi + 1, 254, 255)
        if 0 <= m <= 255
    }
    codes |= {(255, -64), (1, 127), (0, 5), (128, -64), (200, 127)}
    accepted = 0
    with device(model_dir=cdir, timeout=0.1) as (_, dev):
        dev.hello()
        for m, e in sorted(codes):
            fr = command(dev, P.Cmd.SET_LR, P.pack("REQ_SET_LR", m=m, e=e))
            ok = cfg.lr_in_range(m, e)
            accepted += ok
            assert status(fr) == (P.Status.OK if ok else P.Status.BAD_ARG), (m, e)
    assert 10 < accepted < len(codes) - 10  # both answers were exercised


def test_the_range_is_recorded_in_the_export(tmp_path):
    from edgetp.fixed.update_q import lr_code

    qm = tiny_qmodel()
    cfg = DeviceConfig(lr=2e-4, lr_min=1e-6, lr_max=5e-4)
    cdir = export_c(qm, tmp_path / "m", cfg)
    h = (cdir / "etp_model.h").read_text()
    for name, v in (("MIN", 1e-6), ("MAX", 5e-4)):
        m, e = lr_code(v)
        assert f"#define ETP_LR_{name}_M {m}\n" in h and f"#define ETP_LR_{name}_E {e}\n" in h
    dev = json.loads((cdir / "etp_manifest.json").read_text())["device"]
    assert (dev["lr_min"], dev["lr_max"]) == (1e-6, 5e-4)
    from edgetp.errors import EdgetpError

    with pytest.raises(EdgetpError, match="must lie in"):
        DeviceConfig(lr=1e-3, lr_max=5e-4)
    ref = IntReference(qm, cfg)
    with pytest.raises(EdgetpError, match="outside the export's range"):
        ref.set_lr(255, -64)


# ------------------------------------------------------------------ 3. a truncated frame
@pytest.mark.parametrize("target,locked", BUILDS, ids=IDS)
def test_a_truncated_frame_does_not_hide_the_frames_after_it(target, locked):
    with device(target, locked=locked, timeout=0.1 if target == "host" else 1.0) as (_, dev):
        dev.retries = 10
        open_session(dev)
        # a lone header (valid HCRC) announcing MAX_PAYLOAD bytes that never come
        dev.port.write(P.encode(P.Cmd.DIGEST, 7, bytes(P.MAX_PAYLOAD))[: P.HEADER_SIZE])
        t0 = time.monotonic()
        try:
            fr = dev.request(P.Cmd.DIGEST)
        except LinkError as exc:
            pytest.fail(f"the truncated frame hid the next ones: {exc}")
        assert fr[0] == P.Status.OK
        assert dev.stats.retries == 0, "answered only after a resend"
        assert time.monotonic() - t0 < dev.timeout
        c = dev.counters()
        assert c["idle_drops"] == 1 and c["crc_errors"] == 0


def test_the_host_is_not_blinded_by_a_truncated_answer():
    """The host's parser: a lone response header, then the real answer: after one wait in
    silence the partial frame is dropped and the answer taken - without a resend."""
    from deploy.host import Device

    answer = P.encode(
        P.Cmd.DIGEST | P.RESPONSE_BIT, 6, P.pack("RSP_DIGEST", status=0, digest=7, train_steps=1, infer_steps=2)
    )
    lone = P.encode(P.Cmd.DIGEST | P.RESPONSE_BIT, 6, bytes(P.MAX_PAYLOAD))[: P.HEADER_SIZE]
    port = ScriptedPort([lone + answer])  # the first write answered, the others not
    dev = Device(port, timeout=0.05, retries=2)
    dev.seq = 5
    assert dev.digest() == {"status": 0, "digest": 7, "train_steps": 1, "infer_steps": 2}
    assert port.writes == 1 and dev.stats.retries == 0 and dev.parser.idle_drops == 1


def test_the_answer_timeout_exceeds_the_idle_timeout():
    from deploy.host import Device
    from edgetp.errors import EdgetpError

    with pytest.raises(EdgetpError, match="idle timeout"):
        Device(ScriptedPort([]), timeout=2 * P.IDLE_TIMEOUT_MS / 1000)


# ------------------------------------------------------------------ 4. the smaller gaps
@pytest.mark.parametrize("target,locked", BUILDS, ids=IDS)
def test_hello_checks_its_length(target, locked):
    with device(target, locked=locked) as (_, dev):
        fr = raw_hello(dev, 5, bytes(200))
        assert status(fr) == P.Status.BAD_LEN and detail(fr) == 200
        assert status(exchange(dev, P.encode(P.Cmd.DIGEST, 6), P.Cmd.DIGEST)) == P.Status.NO_SESSION
        open_session(dev, 9)
        assert status(raw_hello(dev, 9, b"\x01")) == P.Status.BAD_LEN


def test_out_of_range_optimizer_statistics_are_refused(tmp_path):
    """WRITE_TENSOR (debug build) of a statistic outside [0, ETP_STAT_MAX] would overflow in
    ms_ema: the training step refuses it like an invalid opt_cfg. UBSan build: any signed
    overflow kills the firmware (no answer)."""
    qm = tiny_qmodel(n_in=12, hidden=(10,), n_out=4)
    cdir = export_c(qm, tmp_path / "m")
    names = [t["name"] for t in json.loads((cdir / "etp_manifest.json").read_text())["tensors"]]
    rr = names.index("rr_W0")
    x = P.pack("REQ_TRAIN", label=1) + (np.arange(12) * 300).astype("<i2").tobytes()
    ubsan = ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    from deploy.build import build
    from deploy.targets import start

    image = build(cdir, "host", tmp_path / "build", extra_cflags=ubsan)
    import serial

    from deploy.host import Device

    with start("host", image) as t:
        dev = Device(serial.serial_for_url(t.url, timeout=0.01), timeout=0.2, retries=3)
        try:
            open_session(dev)
            assert status(command(dev, P.Cmd.INIT, P.pack("REQ_INIT", seed=1))) == P.Status.OK
            assert status(command(dev, P.Cmd.TRAIN, x)) == P.Status.OK
            # the high words alone pass a statistic below 2^62; at 2^62 and above each is compared whole
            for bad in (-(1 << 63), -1, (1 << 62) + 1, (1 << 62) + (1 << 32), (1 << 63) - 1):
                w = P.pack("REQ_WRITE_TENSOR", index=rr, offset=0) + struct.pack("<q", bad)
                assert status(command(dev, P.Cmd.WRITE_TENSOR, w)) == P.Status.OK
                d0 = digest(dev)
                fr = command(dev, P.Cmd.TRAIN, x)
                if fr is None:
                    time.sleep(0.5)  # let the sanitizer's report reach the log
                    pytest.fail("the firmware died:\n" + "\n".join(t.log[-5:]))
                assert status(fr) == P.Status.MODEL and detail(fr) == 1  # ETP_EBADARG, nothing changed
                assert digest(dev) == d0
            for good in (1 << 62, 5):  # ETP_STAT_MAX itself is in range
                w = P.pack("REQ_WRITE_TENSOR", index=rr, offset=0) + struct.pack("<q", good)
                assert status(command(dev, P.Cmd.WRITE_TENSOR, w)) == P.Status.OK
                assert status(command(dev, P.Cmd.TRAIN, x)) == P.Status.OK  # in range: learns again
        finally:
            dev.close()


@pytest.mark.parametrize("target", ["host", pytest.param("qemu", marks=QEMU)])
def test_what_a_locked_build_exposes(target):
    """The documented choice (docs/deploy.md, threat model): a locked build answers every
    command but the debug ones - DIGEST included, by which the HIL verifies a locked device."""
    with device(target, locked=True) as (_, dev):
        open_session(dev)
        for cmd in P.Cmd:
            if cmd == P.Cmd.HELLO:
                continue
            fr = command(dev, cmd, b"")
            assert (status(fr) == P.Status.UNKNOWN) == (cmd in P.DEBUG_CMDS), cmd.name
