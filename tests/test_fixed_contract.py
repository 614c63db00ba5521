"""The Python/C contract (edgetp/fixed/contract.py -> firmware_gen/runtime/etp_contract.h) and
single C primitives against their Python twins, through ctypes (not only whole-model runs)."""

import ctypes
import math
import os
import re
import subprocess

import numpy as np
import pytest
from conftest import require
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetp.fixed import contract as C
from edgetp.fixed import primitives as P
from edgetp.fixed import update_q as U
from firmware_gen.build import default_cc
from firmware_gen.gen_contract import NAME, header_text
from firmware_gen.runtime import HEADERS, RUNTIME_DIR, SOURCES

SNAPSHOT = os.path.join(os.path.dirname(__file__), "snapshots", "firmware_tiny")


def test_committed_contract_header_is_generated():
    assert (RUNTIME_DIR / NAME).read_text() == header_text(), (
        "firmware_gen/runtime/etp_contract.h is stale: run python -m firmware_gen.gen_contract"
    )
    assert NAME in HEADERS


def test_header_names_every_code_index_and_range():
    h = header_text()
    for k, code in C.OPT_CODES.items():
        assert f"#define ETP_OPT_{k.upper()} {code}\n" in h
    for i, f in enumerate(C.OPT_CFG_FIELDS):
        lo, hi = C.OPT_CFG_RANGES[f]
        assert f"#define ETP_CFG_{f.upper()} {i}\n" in h
        assert f"#define ETP_CFG_{f.upper()}_MIN {lo}\n" in h and f"#define ETP_CFG_{f.upper()}_MAX {hi}\n" in h
    for k, (code, _c, _n) in C.DTYPES.items():
        assert f"#define ETP_{k.upper()} {code}\n" in h


def test_runtime_names_every_opt_cfg_index():
    """No bare configuration index or range literal in the C runtime: opt_cfg[ETP_CFG_*] only."""
    for name in SOURCES + HEADERS:
        text = (RUNTIME_DIR / name).read_text()
        assert not re.search(r"opt_cfg\[\s*\d", text), name
        assert not re.search(r"\bc\[\s*\d\s*\]", text), name  # a config array named c, not rec[4]


def test_opt_cfg_check_uses_the_ranges():
    ok = [C.OPT_CFG_RANGES[f][0] for f in C.OPT_CFG_FIELDS]
    assert C.opt_cfg_check(ok) is None
    for i, f in enumerate(C.OPT_CFG_FIELDS):
        bad = list(ok)
        bad[i] = C.OPT_CFG_RANGES[f][1] + 1
        assert C.opt_cfg_check(bad).startswith(f + " ="), f


def test_python_constants_come_from_the_contract():
    assert U.KINDS == C.OPT_KINDS and U.NORM_MODE == C.RMS_MODES
    assert int(U.M_MAX) == C.M_MAX and int(U.Q_LIMIT) == C.Q_LIMIT and U.STAT_F == C.STAT_F
    # the proof's premises (docs/fixed-point.md, section 5)
    assert C.Q_LIMIT * C.M_MAX < 2**62 and C.Q_LIMIT * C.M_MAX + 2**32 < 2**63  # p, p + r in int64
    assert C.DIM_MAX * C.Q_LIMIT**2 <= 2**60


@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    require("cc")
    cc = default_cc()
    d = tmp_path_factory.mktemp("prim")
    shim = d / "shim.c"
    shim.write_text("""#include "etp_primitives.h"
#include "etp_update.h"
int64_t t_floor_shift(int64_t a, int k) { return etp_floor_shift(a, k); }
int64_t t_round_shift(int64_t a, int k) { return etp_round_shift(a, k); }
int64_t t_sround_shift(int64_t a, int k, uint32_t r) { return etp_sround_shift(a, k, r); }
int64_t t_isqrt(int64_t n) { return etp_isqrt(n); }
uint32_t t_isqrt30(uint32_t v) { return etp_isqrt30(v); }
/* every root of etp_isqrt30's range at both ends of its run of v: r^2 and r^2 + 2r -> r, r^2 - 1 -> r - 1 */
long t_isqrt30_wrong(void)
{
    long bad = 0;
    uint32_t r;
    for (r = 16384; r < 32768; r++) {
        bad += etp_isqrt30(r * r) != r;
        bad += etp_isqrt30(r * r + 2 * r) != r;
        bad += r > 16384 && etp_isqrt30(r * r - 1) != r - 1;
    }
    return bad;
}
int t_bitlen(int64_t x) { return etp_bitlen(x); }
int64_t t_shl_sat(int64_t x, int k, int64_t lim) { return etp_shl_sat(x, k, lim); }
int64_t t_norm15(int64_t x, int *e) { int64_t m; etp_norm15(x, &m, e); return m; }
uint32_t t_xorshift32(uint32_t x) { return etp_xorshift32(x); }
int64_t t_exp_neg_q(int64_t d, int f) { return etp_exp_neg_q(d, f); }
void t_trace(int16_t *tr, const int8_t *s, uint16_t n, int32_t lam, int ft) { etp_trace_step_q(tr, s, n, lam, ft); }
""")
    srcs = [str(shim)] + [os.path.join(SNAPSHOT, f) for f in ("etp_model.c", "etp_kernels.c", "etp_update.c")]
    lib = d / "libprim.so"
    subprocess.run(
        [cc, "-std=c99", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-I", SNAPSHOT, *srcs, "-o", str(lib)],
        check=True,
    )
    L = ctypes.CDLL(str(lib))
    i64, i32, u32 = ctypes.c_int64, ctypes.c_int, ctypes.c_uint32
    for name, res, args in (
        ("t_floor_shift", i64, [i64, i32]),
        ("t_round_shift", i64, [i64, i32]),
        ("t_sround_shift", i64, [i64, i32, u32]),
        ("t_isqrt", i64, [i64]),
        ("t_isqrt30", u32, [u32]),
        ("t_isqrt30_wrong", ctypes.c_long, []),
        ("t_bitlen", i32, [i64]),
        ("t_shl_sat", i64, [i64, i32, i64]),
        ("t_norm15", i64, [i64, ctypes.POINTER(i32)]),
        ("t_xorshift32", u32, [u32]),
        ("t_exp_neg_q", i64, [i64, i32]),
        ("etp_mean_stat", i64, [i64, ctypes.c_uint16, i32]),
        ("etp_ema_decay", i64, [i64, i32]),
        ("etp_q32", i64, [i64, i32]),
        ("t_trace", None, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint16, ctypes.c_int32, i32]),
    ):
        getattr(L, name).restype = res
        getattr(L, name).argtypes = args
    return L


A61 = st.integers(-(2**61) + 1, 2**61 - 1)


@settings(max_examples=400, deadline=None)
@given(A61, st.integers(1, 62), st.integers(0, 2**32 - 1))
def test_sround_shift_every_shift(clib, a, k, r):
    """Including k > 32, where u = r 2^(k-32) is added in two steps in C."""
    assert clib.t_sround_shift(a, k, r) == int(P.sround_shift(np.int64(a), np.int64(k), np.int64(r)))


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**40), 2**40), st.integers(-20, 0), st.integers(0, 2**32 - 1))
def test_sround_shift_left(clib, a, k, r):
    assert clib.t_sround_shift(a, k, r) == int(P.sround_shift(np.int64(a), np.int64(k), np.int64(r))) == a * 2**-k


@settings(max_examples=300, deadline=None)
@given(A61, st.integers(0, 62))
def test_floor_and_round_shift(clib, a, k):
    assert clib.t_floor_shift(a, k) == int(P.floor_shift(np.int64(a), np.int64(k))) == a >> k
    if k > 0:
        assert clib.t_round_shift(a, k) == int(P.round_shift(np.int64(a), np.int64(k)))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**62 - 1))
def test_isqrt_bitlen_norm15(clib, n):
    assert clib.t_isqrt(n) == int(P.isqrt(np.int64(n)))
    assert clib.t_bitlen(n) == int(P.bitlen(np.int64(n))) == n.bit_length()
    if n > 0:
        e = ctypes.c_int()
        m = clib.t_norm15(n, ctypes.byref(e))
        pm, pe = P.norm15(np.int64(n))
        assert (m, e.value) == (int(pm), int(pe))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(0, 2**32 - 1),
        st.integers(1, 2**16).map(lambda r: r * r - 1),
        st.integers(1, 2**16 - 1).map(lambda r: r * r),
    )
)
def test_isqrt_below_2_to_32(clib, n):
    """etp_isqrt's 32-bit route (Newton's iteration from above), near squares too."""
    assert clib.t_isqrt(n) == int(P.isqrt(np.int64(n))) == math.isqrt(n)


@settings(max_examples=300, deadline=None)
@given(st.integers(2**28, 2**30 - 1))
def test_isqrt30(clib, v):
    """The update's column roots (isqrt_norm15 of a normalised statistic): the tangent start is above the
    root, so Newton's iteration from above ends on it."""
    assert clib.t_isqrt30(v) == clib.t_isqrt(v) == math.isqrt(v)


def test_isqrt30_at_every_square(clib):
    assert clib.t_isqrt30_wrong() == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**40), st.integers(0, 80), st.integers(1, 2**62))
def test_shl_sat(clib, x, k, lim):
    assert clib.t_shl_sat(x, k, lim) == int(P.shl_sat(np.int64(x), np.int64(k), np.int64(lim))) == min(x << k, lim)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 2**32 - 1))
def test_xorshift32(clib, x):
    assert clib.t_xorshift32(x) == int(P.xorshift32(np.int64(x)))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**40), st.integers(0, 24))
def test_exp_neg_q(clib, d, f):
    assert clib.t_exp_neg_q(d, f) == int(P.exp_neg_q(np.int64(d), np.int64(f)))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**62 - 1), st.integers(1, 2**16 - 1), st.integers(-80, 80))
def test_mean_stat(clib, sq, n, sh):
    """The 64/16-bit division by 16-bit digits and the split shift equal the Python twin."""
    assert clib.etp_mean_stat(sq, n, sh) == int(U.mean_stat(np.int64(sq), np.int64(n), np.int64(sh)))


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**62), st.integers(1, 31), st.booleans())
def test_ema_decay(clib, c, k, tie):
    """A column the gradient missed decays as cc + round_shift(0 - cc, k): both twins, round_shift's ties included."""
    if tie:
        c = min((c >> k << k) | (1 << (k - 1)), 2**62)  # c = 2^(k-1) mod 2^k: -c + 2^(k-1) is a multiple of 2^k
    want = c + int(P.round_shift(np.int64(-c), np.int64(k)))
    assert int(U.ema_decay(np.int64(c), np.int64(k))) == want
    assert clib.etp_ema_decay(c, k) == want


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**31), st.integers(-40, 130))
def test_q32(clib, m, s):
    assert clib.etp_q32(m, s) == int(U.q32(np.int64(m), np.int64(s)))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-32768, 32767), min_size=1, max_size=40), st.integers(0, 32768), st.integers(0, 14), st.data()
)
def test_trace_step_in_32_bits(clib, tr, lam, ft, data):
    """The C trace step computes in 32 bits; equal to the int64 Python twin for every int16 trace."""
    from edgetp.fixed.kernels_q import trace_step_q

    t = np.array(tr, np.int16)
    s = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(tr), max_size=len(tr))), np.int8)
    want = trace_step_q(t[None], s[None], lam, ft)[0]
    got = t.copy()
    clib.t_trace(got.ctypes.data, s.ctypes.data, len(tr), lam, ft)
    assert np.array_equal(got, want)


def test_tensor_find_checks_name_dtype_and_count(tmp_path):
    """etp_tensor_find (what the server and listener use before casting a tensor's data) returns the entry only
    when its name, dtype and element count all match: the tiny snapshot's opt_steps is one u32, u two i32."""
    require("cc")
    shim = tmp_path / "shim.c"
    shim.write_text("""#include "etp_model.h"
#include "etp_api.h"
int t_find(const char *name, int dtype, uint32_t count)
{
    const etp_tensor_t *t = etp_tensor_find(name, (uint8_t)dtype, count);
    return t == NULL ? -1 : (int)(t - etp_tensor(0));
}
""")
    # the model and runtime without the weight store (that one needs a port's flash)
    runtime = sorted(f for f in os.listdir(SNAPSHOT) if f.endswith(".c") and f != "etp_store.c")
    srcs = [str(shim)] + [os.path.join(SNAPSHOT, f) for f in runtime]
    lib = tmp_path / "libapi.so"
    subprocess.run(
        [default_cc(), "-std=c99", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-I", SNAPSHOT, *srcs, "-o", lib],
        check=True,
    )
    find = ctypes.CDLL(str(lib)).t_find
    find.restype, find.argtypes = ctypes.c_int, [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32]
    table = open(os.path.join(SNAPSHOT, "etp_model.c")).read()
    names = re.findall(r'\{"(\w+)", ETP_\w+, [01], \d+u,', table)
    assert find(b"opt_steps", C.DTYPES["u32"][0], 1) == names.index("opt_steps")
    assert find(b"u", C.DTYPES["i32"][0], 2) == names.index("u")
    for name, dtype, count in (
        (b"opt_steps", "i32", 1),  # the right size, the wrong type
        (b"opt_steps", "u32", 2),  # the wrong count
        (b"u", "i32", 3),
        (b"opt_step", "u32", 1),  # a prefix is not the name
        (b"nothing", "u32", 1),
    ):
        assert find(name, C.DTYPES[dtype][0], count) == -1, (name, dtype, count)
