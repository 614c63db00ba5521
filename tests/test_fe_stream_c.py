"""The stream frontend's C twin (firmware_gen/runtime/etp_fe_stream.c) equals edgetp/audio/frontend_q_stream.py:
every frame's features and how many each hop finishes, for look-aheads 0, 1, 50, on random and real audio, under
ASan/UBSan; a 30-minute stream computes what its first seconds do (nothing drifts or wraps); planted bugs in the
stream's bookkeeping fail (issue 32). The harness is tests/c/fe_stream_main.c."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from detect_models import LABELS, random_model
from test_frontend_q_running import stream_q

from edgetp.audio import frontend_q as fq
from edgetp.fixed.qconfig import from_float

MAIN = Path(__file__).parent / "c" / "fe_stream_main.c"
REAL = sorted((Path(__file__).parent / "data" / "real").glob("*.wav"))
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]


def _qm():
    m = random_model()
    return from_float(m.cfg, m.params, 10, 16, labels=LABELS)


def build(tmp: Path, ahead: int, plant=None, sanitize=False) -> Path:
    from firmware_gen.generate import render

    norm = fq.InputNorm.from_scale(None, 10, 16, 1000.0, 2, ahead)
    render(_qm(), frontend=norm).write(tmp)
    if plant is not None:
        src = tmp / "etp_fe_stream.c"
        text = src.read_text()
        assert text.count(plant[0]) == 1, plant[0]
        src.write_text(text.replace(*plant))
    cc = "clang" if sanitize else (shutil.which("gcc") or shutil.which("clang") or "cc")
    srcs = [MAIN, *(tmp / n for n in ("etp_frontend.c", "etp_fe_stream.c", "etp_frontend_cfg.c"))]
    flags = SAN if sanitize else ["-O2"]
    exe = tmp / "fes"
    cmd = [cc, "-std=c99", *flags, "-Wall", "-Wextra", "-Werror", "-I", str(tmp), *map(str, srcs), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True)
    return exe


def run_c(exe: Path, pcm: np.ndarray):
    """(features of every frame, frames per hop) of the C stream on ``pcm`` (whole hops) and its flush."""
    out = subprocess.run([str(exe)], input=pcm.astype("<i2").tobytes(), capture_output=True, check=True).stdout
    i, counts, rows = 0, [], []
    for _ in range(pcm.size // fq.HOP):
        n = out[i]
        counts.append(n)
        rows.append(np.frombuffer(out[i + 1 : i + 1 + 480 * n], "<i4").reshape(n, 120))
        i += 1 + 480 * n
    tot = int(np.frombuffer(out[i : i + 4], "<u4")[0])
    rows.append(np.frombuffer(out[i + 4 : i + 4 + 480 * tot], "<i4").reshape(tot, 120))
    return np.concatenate(rows), counts


def run_py(pcm: np.ndarray, ahead: int):
    feats, counts, _flushed = stream_q(pcm, log_gain=1000.0, running_max_decay=2, running_max_ahead=ahead)
    return feats, counts


def signals(seed: int):
    """Loud and quiet stretches of noise (the maximum rises, decays, floors), silence, clipping, and real speech."""
    rng = np.random.default_rng(seed)
    env = np.repeat(rng.choice([0.0, 3.0, 40.0, 3000.0, 40000.0], 40), 1600)
    noise = np.clip(rng.normal(size=env.size) * env, -32768, 32767).astype(np.int16)
    speech = np.concatenate([fq.pcm16(fq.load_pcm16(p)) for p in REAL[:3]])
    return [noise, speech, noise[: 160 * 8]]  # the last: the shortest stream the flush takes


@pytest.mark.needs("cc")
@pytest.mark.parametrize("ahead", [0, 1, 50])
def test_c_stream_equals_the_python_stream(tmp_path, ahead):
    exe = build(tmp_path, ahead)
    for pcm in signals(ahead):
        got, counts = run_c(exe, pcm)
        want, wc = run_py(pcm, ahead)
        assert counts == wc
        np.testing.assert_array_equal(got, want)


@pytest.mark.needs("clang-sanitizers")
def test_c_stream_under_sanitizers(tmp_path):
    exe = build(tmp_path, 50, sanitize=True)
    pcm = signals(3)[0][: 160 * 900]
    got, _ = run_c(exe, pcm)
    np.testing.assert_array_equal(got, run_py(pcm, 50)[0])


@pytest.mark.needs("cc")
def test_thirty_minutes_compute_what_the_first_seconds_do(tmp_path):
    """A 4-second pattern repeated for 30 minutes (180,000 frames): once the maximum has settled (one period) the
    features repeat with the period, to the last frame before the end rows: no state drifts or wraps."""
    exe = build(tmp_path, 50)
    rng = np.random.default_rng(9)
    env = np.repeat([30.0, 9000.0, 100.0, 20000.0], 16000)
    period = np.clip(rng.normal(size=env.size) * env, -32768, 32767).astype(np.int16)
    pcm = np.tile(period, 30 * 60 // 4)
    got, _counts = run_c(exe, pcm)
    p = period.size // fq.HOP
    assert got.shape == (pcm.size // fq.HOP + 1, 120)
    last = got.shape[0] - 60  # before the end rows and the maximum carried past the end
    j = (last // p - 1) * p  # a whole number of periods after frame p
    assert j > 400 * p
    np.testing.assert_array_equal(got[p : 2 * p], got[j : j + p])
    np.testing.assert_array_equal(got[: 3 * p - 60], run_py(pcm[: 3 * period.size], 50)[0][: 3 * p - 60])


@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "old,new",
    [
        # the end rows one frame off, the maximum past the end one frame off, the start rows' condition
        ("o = lag - ETP_FE_DELTA_WIDTH;", "o = lag - ETP_FE_DELTA_WIDTH + (lag == 1);"),
        ("ETP_FE_RUNNING_MAX_AHEAD + 1 - fs->wait));", "ETP_FE_RUNNING_MAX_AHEAD + 2 - fs->wait));"),
        ("return fs->lag > ETP_FES_H;", "return fs->lag > ETP_FES_H + 1;"),
        (
            "if (fs->wait > ETP_FE_RUNNING_MAX_AHEAD) fes_l(fs, fs->m);",
            "if (fs->wait > ETP_FE_RUNNING_MAX_AHEAD - 1) fes_l(fs, fs->m);",
        ),
    ],
)
def test_a_planted_bug_fails(tmp_path, old, new):
    exe = build(tmp_path, 50, plant=(old, new))
    pcm = signals(4)[0][: 160 * 400]
    want = run_py(pcm, 50)
    try:
        got = run_c(exe, pcm)
    except subprocess.CalledProcessError:
        return  # refused or crashed: caught too
    assert got[1] != want[1] or not np.array_equal(got[0], want[0])
