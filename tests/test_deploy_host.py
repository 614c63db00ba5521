"""The firmware's protocol server on the host (pty) target, with the test-double model:
sessions, sequence numbers and idempotence, malformed frames, the locked build, a HIL
session and its mismatch diagnosis."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import FakeReference, device, fake_data  # noqa: E402

from deploy import protocol as P  # noqa: E402
from deploy.hil import HilError, run_session  # noqa: E402
from deploy.host import DeviceError, DeviceReset  # noqa: E402

pytestmark = pytest.mark.needs("cc")


def raw_exchange(dev, frame: bytes, wait=0.3) -> list:
    """Send raw bytes, return every frame that comes back within ``wait`` seconds."""
    dev.port.write(frame)
    out, end = [], time.monotonic() + wait
    while time.monotonic() < end:
        out += dev.parser.feed(dev.port.read(256))
    return out


def test_hello_identifies_firmware_and_model():
    with device() as (_, dev):
        info = dev.hello()
        assert (info.n_in, info.n_out, info.x_bytes) == (8, 3, 2)
        assert info.model_hash == "fa4efa4efa4efa4e" and info.gen_version == "fake-1"
        assert info.board == "host-pty" and info.debug and info.counter_name == "nanoseconds"
        assert info.proto_hash == P.spec_hash() and info.max_payload == P.MAX_PAYLOAD


def test_training_matches_the_twin_and_tensors_read_back():
    (sx, sy), _ = fake_data()
    with device() as (_, dev):
        dev.hello()
        dev.init(5)
        ref = FakeReference()
        ref.init(5)
        for xs, y in zip(sx[:3], sy[:3]):
            dev.reset_state()
            for x in xs:
                dev.train(x, int(y))
            ref.train_sample(xs, int(y))
            assert dev.digest()["digest"] == ref.digest()
        names = [t.name for t in dev.tensors()]
        assert names == [n for n, _ in ref.tensors()]
        for t, (_, a) in zip(dev.tensors(), ref.tensors()):
            assert np.array_equal(dev.read_tensor(t.index), a)
        dev.load_x(sx[0, 0])  # chunked load, then a step on the loaded frame
        assert dev.infer()["steps"] == 1
        # READ_STATE (verify-c's read): every tensor's bytes in table order
        state = b"".join(dev.read_tensor(t.index).astype(t.np_dtype).tobytes() for t in dev.tensors())
        assert dev.read_state() == state
        assert dev.request(P.Cmd.READ_STATE, P.pack("REQ_READ_STATE", offset=3, length=20))[1:] == state[3:23]
        with pytest.raises(DeviceError, match="BAD_ARG"):
            dev.request(P.Cmd.READ_STATE, P.pack("REQ_READ_STATE", offset=len(state) - 1, length=2))
        with pytest.raises(DeviceError, match="UNSUPPORTED"):
            dev.set_optimizer("sgd", 0, "all")  # the fake model has no etp_set_optimizer


def test_a_repeated_command_is_answered_but_not_run_again():
    x = np.arange(8) * 50
    with device() as (_, dev):
        dev.hello()
        dev.init(1)
        seq = (dev.seq + 1) % P.SEQ_MOD
        frame = P.encode(P.Cmd.TRAIN, seq, P.pack("REQ_TRAIN", label=2) + x.astype("<i2").tobytes())
        first = raw_exchange(dev, frame)
        again = raw_exchange(dev, frame + frame)
        assert len(first) == 1 and len(again) == 2 and again[0] == first[0] == again[1]
        dev.seq = seq
        d = dev.digest()
        assert d["train_steps"] == 1
        assert dev.counters()["repeats"] == 2


def test_out_of_sequence_and_sessionless_frames_are_rejected():
    with device() as (_, dev):
        got = raw_exchange(dev, P.encode(P.Cmd.DIGEST, 5))
        assert got[0].payload[0] == P.Status.NO_SESSION
        dev.hello()
        seq = dev.seq
        for bad in (seq + 2, seq - 1, seq + 1000):
            got = raw_exchange(dev, P.encode(P.Cmd.RESET, bad % P.SEQ_MOD))
            st, detail = got[0].payload[0], int.from_bytes(got[0].payload[1:5], "little")
            assert st == P.Status.SEQ and detail == (seq + 1) % P.SEQ_MOD
        # the same seq with different content is not a repeat
        dev.reset_state()
        got = raw_exchange(dev, P.encode(P.Cmd.INIT, dev.seq, P.pack("REQ_INIT", seed=1)))
        assert got[0].payload[0] == P.Status.SEQ
        assert dev.counters()["seq_errors"] == 4


def test_malformed_and_too_long_frames():
    with device() as (_, dev):
        dev.hello()
        with pytest.raises(DeviceError, match="BAD_LEN"):
            dev.request(P.Cmd.INIT, b"\x01\x02")
        with pytest.raises(DeviceError, match="BAD_ARG"):
            dev.train(np.zeros(8), 3)  # label out of range
        with pytest.raises(DeviceError, match="BAD_ARG"):
            dev.request(P.Cmd.LOAD_X, P.pack("REQ_LOAD_X", offset=7) + bytes(4))
        with pytest.raises(DeviceError, match="BAD_ARG"):
            dev.request(P.Cmd.READ_TENSOR, P.pack("REQ_READ_TENSOR", index=0, offset=40, length=10))
        with pytest.raises(DeviceError, match="UNKNOWN"):
            dev.request(0x7F)
        with pytest.raises(DeviceError, match="UNSUPPORTED"):
            dev.set_lr(200, 20)  # the fake model has no etp_set_lr
        # a header announcing more than MAX_PAYLOAD is dropped without an answer
        head = bytes([0x01, 0x01, P.Cmd.DIGEST]) + ((dev.seq + 1) % P.SEQ_MOD).to_bytes(2, "little")
        assert raw_exchange(dev, P.SYNC + head + bytes([P.crc8(head)]) + bytes(300), wait=0.2) == []
        # garbage, then a valid command: the parser resynchronises
        assert dev.counters()["hdr_errors"] >= 1
        assert dev.digest()["train_steps"] == 0


def test_locked_build_has_no_state_dump_or_write_commands():
    with device(locked=True) as (_, dev):
        info = dev.hello()
        assert not info.debug
        for cmd, pl in (
            (P.Cmd.TENSOR_INFO, P.pack("REQ_TENSOR_INFO", index=0)),
            (P.Cmd.READ_TENSOR, P.pack("REQ_READ_TENSOR", index=0, offset=0, length=4)),
            (P.Cmd.WRITE_TENSOR, P.pack("REQ_WRITE_TENSOR", index=0, offset=0) + b"\0\0"),
        ):
            with pytest.raises(DeviceError, match="UNKNOWN"):
                dev.request(cmd, pl)
        dev.init(0)
        dev.train(np.ones(8), 1)  # learning stays available


def test_reset_is_noticed():
    with device() as (t, dev):
        dev.hello()
        dev.init(0)
        t.reset()
        with pytest.raises(DeviceReset):
            dev.digest()
        dev.hello()
        assert dev.digest()["train_steps"] == 0


def test_hil_session_on_the_host_target():
    sup, qry = fake_data()
    with device() as (_, dev):
        res = run_session(dev, FakeReference(), sup, qry, epochs=2, seed=3)
    assert list(res)[:2] == ["samples", "mismatches"]
    assert res["samples"] == 12 and res["mismatches"] == 0 and res["query_samples"] == 6
    assert res["double_applied"] == 0 and res["lost"] == 0
    assert res["train_step"]["n"] == 12 * 20 and res["counter"] == "nanoseconds"


class _Drifting(FakeReference):
    """A reference that differs from the device in one weight after the 2nd sample."""

    def train_sample(self, xs, label):
        super().train_sample(xs, label)
        self.n = getattr(self, "n", 0) + 1
        if self.n == 2:
            self.w[5] += 1


def test_a_mismatch_names_the_first_differing_tensor():
    sup, qry = fake_data()
    with device() as (_, dev):
        with pytest.raises(HilError, match=r"first differing tensor: w .*first at \[5\]") as e:
            run_session(dev, _Drifting(), sup, qry, epochs=1)
    assert e.value.result["mismatches"] == 1 and e.value.result["samples"] == 1
