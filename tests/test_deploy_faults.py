"""Fault injection between host and device: the session completes with zero lost or
double-applied samples and zero mismatches, or stops saying what was lost."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import FakeReference, device, fake_data  # noqa: E402

from deploy import protocol as P  # noqa: E402
from deploy.hil import HilError, run_session  # noqa: E402

pytestmark = pytest.mark.needs("cc")
NOISE = "drop=0.003,corrupt=0.003,dup=0.05,truncate=0.03"


def _check_clean(res, samples):
    assert res["samples"] == samples
    assert res["mismatches"] == 0 and res["lost"] == 0 and res["double_applied"] == 0


def test_noisy_link_with_resets_mid_sample_recovers_by_restoring_state():
    sup, qry = fake_data()
    with device(faults=f"{NOISE},reset=120+400,seed=1") as (_, dev):
        res = run_session(dev, FakeReference(), sup, qry, epochs=2, seed=1)
        stats = dev.port.stats
    _check_clean(res, 12)
    assert stats.resets == 2 and stats.dropped and stats.corrupted and stats.duplicated and stats.truncated
    assert res["resets"] >= 2 and all("restored" in r["how"] for r in res["recoveries"])
    assert any("training sample" in r["during"] for r in res["recoveries"])
    assert res["link"]["retries"] > 0


def test_locked_firmware_recovers_by_replaying_the_applied_samples():
    sup, qry = fake_data()
    with device(locked=True, faults=f"{NOISE},reset=300,seed=2") as (_, dev):
        res = run_session(dev, FakeReference(), sup, qry, epochs=2, seed=2)
    _check_clean(res, 12)
    assert res["recoveries"] and "replayed" in res["recoveries"][0]["how"]


def test_duplicated_frames_are_never_applied_twice():
    sup, qry = fake_data()
    with device(faults="dup=0.5,to_host=0,seed=3") as (_, dev):
        res = run_session(dev, FakeReference(), sup, qry, epochs=1)
        repeats = dev.counters()["repeats"]
    _check_clean(res, 6)
    assert repeats > 50  # the device answered repeats from its cache


def test_without_recovery_a_reset_stops_with_what_was_lost():
    sup, qry = fake_data()
    # writes: HELLO, INIT, DIGEST, 3 query samples x 22, then 22 per training sample: 125 is in the 3rd
    with device(faults="reset=125,seed=4") as (_, dev):
        with pytest.raises(HilError, match=r"reset during training sample 3/6 .*lost.* 2 training sample\(s\)") as e:
            run_session(dev, FakeReference(), sup, qry, epochs=1, recover=False)
    assert e.value.result["lost"] == 2 and e.value.result["mismatches"] == 0


@pytest.mark.parametrize("locked", [False, True], ids=["normal", "locked"])
def test_a_reconnect_mid_sample_loses_and_doubles_nothing(locked):
    """The connection is cut during a TRAIN frame (the device gets a random prefix of it,
    or all of it and its answer is lost), twice in a row (the second cut hits the HELLO of
    the reconnect), and once more later: the host reopens the port, HELLO joins the open
    session, the unanswered frame is resent unchanged - nothing to restore or replay."""
    sup, qry = fake_data()
    # writes: HELLO, INIT, DIGEST, 3 query samples x 22, then 22 per training sample: 100 and 150
    # are TRAIN frames of the 2nd and 3rd training samples
    with device(locked=locked, faults="reconnect=100+101+150,seed=6") as (_, dev):
        res = run_session(dev, FakeReference(), sup, qry, epochs=1, seed=6)
        stats = dev.port.stats
    _check_clean(res, 6)
    assert stats.reconnects == 3 and res["link"]["reconnects"] == 3
    assert stats.cut == [P.Cmd.TRAIN, P.Cmd.HELLO, P.Cmd.TRAIN]
    assert res["resets"] == 0 and res["recoveries"] == []


def test_a_reconnect_on_a_noisy_link_with_a_reset():
    sup, qry = fake_data()
    with device(faults=f"{NOISE},reset=260,reconnect=120+200,seed=7") as (_, dev):
        res = run_session(dev, FakeReference(), sup, qry, epochs=2, seed=7)
        stats = dev.port.stats
    _check_clean(res, 12)
    assert stats.reconnects == 2 and stats.resets == 1 and res["resets"] >= 1


@pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
@pytest.mark.parametrize("locked", [False, True], ids=["normal", "locked"])
def test_qemu_target_with_a_reconnect_mid_sample(locked):
    sup, qry = fake_data(n_support=3, n_query=1, T=10)
    # writes: HELLO, INIT, DIGEST, 1 query sample x 12, then 12 per training sample: 20 is a TRAIN frame
    with device("qemu", locked=locked, faults="reconnect=20,seed=8", timeout=0.5) as (_, dev):
        res = run_session(dev, FakeReference(), sup, qry, epochs=1)
    _check_clean(res, 3)
    assert res["link"]["reconnects"] == 1 and res["resets"] == 0 and dev.port.stats.cut == [P.Cmd.TRAIN]


@pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
def test_qemu_target_with_faults_and_a_board_reset():
    sup, qry = fake_data(n_support=3, n_query=1, T=10)
    with device("qemu", faults="drop=0.002,corrupt=0.002,dup=0.05,truncate=0.02,reset=45,seed=5", timeout=0.5) as (
        _,
        dev,
    ):
        res = run_session(dev, FakeReference(), sup, qry, epochs=1)
    _check_clean(res, 3)
    assert res["resets"] >= 1 and res["counter"] == "instructions"
