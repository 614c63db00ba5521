"""Fuzzing: the C parser and command server under libFuzzer (Debian's clang), the
Python host under hypothesis (whatever comes back, only the documented errors)."""

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy import protocol as P
from deploy.host import Device, DeviceError, LinkError
from edgetp.errors import EdgetpError

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import ScriptedPort  # noqa: E402


@pytest.mark.needs("libfuzzer")
@pytest.mark.parametrize("variant", [[], ["--locked"]], ids=["normal", "locked"])
def test_libfuzzer_finds_no_crash_in_the_c_parser_and_server(tmp_path, variant):
    """Both builds, over a real export whose API has SET_LR (compiled in: ETP_HAS_SET_LR)."""
    r = subprocess.run(
        [sys.executable, "-m", "deploy.fuzz", "--runs", "40000", "--seconds", "60", "--out", str(tmp_path), *variant],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Done 40000 runs" in r.stdout or "DONE" in r.stdout
    assert f"fuzz_server: build locked={int(bool(variant))} set_lr=1" in r.stdout


reply = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda t, s, pl: P.encode(t, s, pl),
        st.sampled_from([0x81, 0x88, 0x89, 0x86, 0x91]),
        st.integers(0, 3),
        st.binary(max_size=80),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(reply, max_size=4), st.sampled_from(["hello", "digest", "train", "counters", "read"]))
def test_host_survives_any_reply(replies, what):
    dev = Device(ScriptedPort(replies), timeout=0.05, retries=2, seed=0)
    dev.timeout = 0.001  # canned replies: nothing to wait for (no device idle timeout)
    dev.seq = 0
    dev.info = type("I", (), {"x_bytes": 2, "n_in": 4, "n_out": 2, "n_tensors": 1})()
    try:
        if what == "hello":
            dev.hello()
        elif what == "digest":
            dev.digest()
        elif what == "train":
            dev.train([1, 2, 3, 4], 1)
        elif what == "counters":
            dev.counters()
        else:
            dev._tensors = None
            dev.tensors()
    except (LinkError, DeviceError, EdgetpError):
        pass
