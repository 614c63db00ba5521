"""The network step's faster C paths (issue 28) are bit-exact and checked: the recurrent spike sums
of four rows at once (sum_at_h4, and the rows past the last group of four), the dense int8 rows
taken four at a time (dot_dense8_x4; on the host each row goes through dot_dense8, on a Cortex-M4
through 32-bit SMLAD, which `edgetp hil --target qemu` checks) and lif_dense8, the rows of dense
features in 32 bits. verify-c's harness catches each planted bug below on int8 hidden layers of 6 and
5 recurrent neurons (layer 0 takes lif_dense8, layer 1's spikes the general loop): trained (row-major R
in RAM: sum_at_h4) or frozen (R stored transposed in flash: rec_cols8; the eight-row columns need a
layer of at least 8, cols_sum8's flush at ETP_RCOL_FLUSH spikes one of more than 256). A frozen int8 W0 met by
int16 features is stored as int16 (layout.wide_input): dot_dense16_x2, on the host and in its M4 assembly."""

import pytest

from firmware_gen.cases import CaseSpec
from test_firmware_frozen import _verify, frozen_spec

SPEC = dict(lr=1e-2, vth=0.05, samples=2, steps=8)


def row_major_spec(**kw) -> CaseSpec:
    """int8 hidden layers that learn: R in RAM, row-major."""
    return CaseSpec(**{**dict(hidden=(6, 5), recurrent=True, wbits=8, **SPEC), **kw})


@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "mutate",
    [
        ("etp_kernels.c", "a2 += r2[j];", "a2 += r3[j];"),  # one row of a group of four read twice
        ("etp_kernels.c", "rs = rec[i & 3u];", "rs = rec[0];"),  # the group's first sum for all four
        ("etp_kernels.c", "d[1] = dot_dense8(r1, xp, n);", "d[1] = dot_dense8(r2, xp, n);"),  # a row of four read twice
        ("etp_kernels.c", "lif_p32(d[k], rc[k], sh4 != NULL", "lif_p32(d[k], rc[0], sh4 != NULL"),  # lif_rows4: one sum
        ("etp_kernels.c", "p = lif_p32(d[k], rc[k], sh, sh_r,", "p = lif_p32(d[k], rc[0], sh, sh_r,"),  # the last rows'
        ("etp_kernels.c", "(uint32_t)1 << -k", "(uint32_t)2 << -k"),  # the recurrent left shift
        ("etp_kernels.c", "sum_at_h(R + (uint32_t)(i + k) * n", "sum_at_h(R + (uint32_t)i * n"),  # lif_dense8's tail
        ("etp_kernels.c", "p < vth_q ? p : hard ? 0 :", "p < vth_q ? p : hard ? 1 :"),  # lif_dense8's reset
        ("etp_primitives.h", "(uint32_t)(a + (1 << (k - 1)))", "(uint32_t)(a + (1 << k))"),  # etp_round_shift32
    ],
)
def test_harness_catches_planted_bugs_in_the_fast_paths(mutate, tmp_path):
    spec = row_major_spec()
    assert _verify(spec, tmp_path, mutate=mutate)[1] is not None, mutate
    assert _verify(spec, tmp_path)[1] is None


@pytest.mark.needs("cc")
def test_the_sanitizers_catch_a_group_of_four_past_the_last_row(tmp_path):
    """The first row past the last group of four taken as a group: its own sum is still right, but
    the group reads rows that do not exist (ASan in verify-c --sanitize)."""
    spec = row_major_spec()
    old = "} else if (i >= (n & ~3u)) {        /* the last n % 4 rows */\n                rs = sum_at_h("
    mutate = ("etp_kernels.c", old, old.replace(">=", ">"))
    assert _verify(spec, tmp_path, mutate=mutate)[1] is None  # the values agree
    assert _verify(spec, tmp_path, sanitize=True, mutate=mutate)[1] is not None


@pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
def test_the_cortex_m4_paths_on_the_emulated_board(tmp_path):
    """dot_dense8_x4's Cortex-M4 body (inline assembly, eight inputs a round, then a group of four in
    pair_inputs8's order, then the rest) and cols_sum8's (SXTAB16 into packed lanes) run only on the board:
    15 features take all three parts of the first, layer 0's 9 neurons one group of eight rows of the
    second. A planted bug in each assembly (one row's odd products against the even inputs; two rows of a
    column into one lane pair; a word's odd bytes read as its even ones) is found there."""
    from deploy.bitexact import verify_export
    from firmware_gen.cases import build_model, build_script, device_config
    from firmware_gen.generate import render
    from firmware_gen.tensors import TableDevice

    spec = frozen_spec(**SPEC, n_in=15, hidden=(9, 5))
    qm, dev = build_model(spec), device_config(spec)
    plants = [
        ('"smlad %[a3], %[w], %[xb], %[a3]\\n\\t"', '"smlad %[a3], %[w], %[xa], %[a3]\\n\\t"'),
        # cols_sum8: rows 1 and 3 of a column added to the lanes of rows 0 and 2
        ('"sxtab16 %[q1], %[q1], %[w0], ror #8\\n\\t"', '"sxtab16 %[q0], %[q0], %[w0], ror #8\\n\\t"'),
        # cols_sum8: the second word's rows 5 and 7 read without the rotation (rows 4 and 6 again)
        ('"sxtab16 %[q3], %[q3], %[w1], ror #8"', '"sxtab16 %[q3], %[q3], %[w1]"'),
    ]
    for k, plant in enumerate([None, *plants]):
        ex = render(qm, dev)
        if plant:
            assert plant[0] in ex.files["etp_kernels.c"]
            ex.files["etp_kernels.c"] = ex.files["etp_kernels.c"].replace(*plant, 1)
        mm = verify_export(ex, TableDevice(qm, dev), build_script(spec), 0, False, tmp_path / str(k), target="qemu")[1]
        assert (mm is not None) == (plant is not None), (plant, mm)


def _verify_model(spec, qm, tmp_path, mutate=None, target="host", also=None):
    """verify-c's comparison of the export of ``qm`` (a model of ``spec``, its weights changed) with the reference;
    ``mutate`` and ``also``: (file, old, new) replacements of the generated files."""
    from deploy.bitexact import verify_export
    from firmware_gen.cases import build_script, device_config
    from firmware_gen.generate import render
    from firmware_gen.tensors import TableDevice

    dev = device_config(spec)
    ex = render(qm, dev)
    for m in (mutate, also):
        if m:
            file, old, new = m
            assert old in ex.files[file], old
            ex.files[file] = ex.files[file].replace(old, new, 1)
    return verify_export(ex, TableDevice(qm, dev), build_script(spec), 0, False, tmp_path, target=target)[1]


@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "mutate",
    [
        ("etp_kernels.c", "rec_cols8(R, r_stride, i, n,", "rec_cols8(R, n, i, n,"),  # the unpadded column stride
        ("etp_kernels.c", "rc = rec8 + (i & 7u);", "rc = rec8;"),  # the second group of four reads the first's sums
        ("etp_network.c", "prop ? 0u : ly->r_stride", "0u"),  # the transposed R read as row-major
    ],
)
def test_harness_catches_planted_bugs_in_the_transposed_recurrent_sums(mutate, tmp_path):
    """A frozen int8 R is stored transposed (layout.stored_form): rows 0..7 of layer 0 (9 neurons, stride
    12) through cols_sum8's eight-row columns, row 8 and layer 1 (6) through col_sum."""
    spec = frozen_spec(**{**SPEC, "n_in": 7, "hidden": (9, 6)})
    assert _verify(spec, tmp_path, mutate=mutate)[1] is not None, mutate
    assert _verify(spec, tmp_path)[1] is None


def _burst_model():
    """264 frozen neurons, every input weight 127 and every recurrent weight -128 (fw 4: the sums shifted
    left by 8): all neurons fire on a positive input, and the next step's recurrent sums are
    264 x -128 = -33 792, outside int16 unless the 16-bit lanes are flushed after 256 spikes."""
    from firmware_gen.cases import build_model

    spec = frozen_spec(**{**SPEC, "n_in": 4, "hidden": (264,), "fw": {"W0": 5, "R0": 4, "W1": 12}, "steps": 6})
    qm = build_model(spec)
    qm.weights["W0"][:] = 127
    qm.weights["R0"][:] = -128
    return spec, qm


@pytest.mark.needs("cc")
def test_the_sixteen_bit_lanes_are_flushed_before_they_overflow(tmp_path):
    """ETP_RCOL_FLUSH (layout.RCOL_FLUSH = 256) one spike too many: 257 x -128 wraps in int16."""
    spec, qm = _burst_model()
    assert _verify_model(spec, qm, tmp_path) is None
    plant = ("etp_model.h", "#define ETP_RCOL_FLUSH 256u", "#define ETP_RCOL_FLUSH 257u")
    assert _verify_model(spec, qm, tmp_path, plant) is not None


@pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
def test_the_cortex_m4_lanes_are_flushed_before_they_overflow(tmp_path):
    """The flush bound on the board (packed SADD16 lanes wrap as the host's int16 lanes do)."""
    spec, qm = _burst_model()
    spec.samples, spec.steps = 1, 4
    assert _verify_model(spec, qm, tmp_path / "a", target="qemu") is None
    plant = ("etp_model.h", "#define ETP_RCOL_FLUSH 256u", "#define ETP_RCOL_FLUSH 257u")
    assert _verify_model(spec, qm, tmp_path / "b", plant, target="qemu") is not None


def _wide_model():
    """A frozen int8 W0 with int16 features and an even input count is stored as int16 (layout.wide_input):
    22 inputs take dot_dense16_x2's rounds of sixteen and four and its last two; layer 0's 11 rows two groups
    of four and three rows of dot_dense16. Its weights span the int8 range, both ends included."""
    import numpy as np

    from firmware_gen.cases import build_model

    spec = frozen_spec(**{**SPEC, "n_in": 22, "hidden": (11, 5)})
    qm = build_model(spec)
    w = qm.weights["W0"]
    w[:] = np.random.default_rng(5).integers(-128, 128, w.shape)
    w[0, :2], w[1, :2] = -128, 127
    return spec, qm


def test_a_frozen_int8_w0_is_stored_wide():
    from firmware_gen.cases import build_model, device_config
    from firmware_gen.generate import render
    from firmware_gen.layout import device_layout

    spec, qm = _wide_model()
    assert device_layout(qm).item("W0").wide and not device_layout(qm).item("R0").wide
    src = render(qm, device_config(spec)).files["etp_model.c"]
    assert "static const int16_t etp_W0[11 * 22] ETP_ALIGN4" in src and ".w16 = 1," in src
    odd = frozen_spec(**{**SPEC, "n_in": 7})  # an odd row length: int8 (its rows would not be word-aligned)
    assert not device_layout(build_model(odd)).item("W0").wide


@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "mutate",
    [
        ("etp_kernels.c", "a1 += (int32_t)r1[j] * x[j];", "a1 += (int32_t)r0[j] * x[j];"),  # one row read twice
        ("etp_kernels.c", "dot_dense16_x2(r + 2u * m, r + 3u * m,", "dot_dense16_x2(r + 2u * m, r + 2u * m,"),
        ("etp_kernels.c", "? dot_dense16(W16 + (uint32_t)(i + k) * m", "? dot_dense16(W16 + (uint32_t)i * m"),  # tail
        ("etp_model.c", ".w16 = 1,", ".w16 = 0,"),  # the int16 rows read as int8
    ],
)
def test_harness_catches_planted_bugs_in_the_wide_w0(mutate, tmp_path):
    spec, qm = _wide_model()
    assert _verify_model(spec, qm, tmp_path / "bug", mutate) is not None, mutate
    assert _verify_model(spec, qm, tmp_path / "ok") is None


@pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
def test_the_cortex_m4_wide_w0_on_the_emulated_board(tmp_path):
    """dot_dense16_x2's assembly (LDRD pairs into SMLAD) and its last n % 4 inputs run only on the board; a
    planted bug in each is found there."""
    spec, qm = _wide_model()
    spec.samples = 1
    plants = [
        ("etp_kernels.c", '"smlad %[a1], %[w1], %[xb], %[a1]"', '"smlad %[a1], %[w1], %[xa], %[a1]"'),
        ("etp_kernels.c", "a1 += (int32_t)dot_dense16(q, xs,", "a1 += (int32_t)dot_dense16(p, xs,"),
    ]
    for k, plant in enumerate([None, *plants]):
        mm = _verify_model(spec, qm, tmp_path / str(k), plant, target="qemu")
        assert (mm is not None) == (plant is not None), (plant, mm)


# the word-aligned features read in place; the others copied to a word boundary first (val_x)
_ALIGNED = "} else if (((uintptr_t)x->p & 3u) == 0u) {"
_COPY = "memcpy(val_x, x->p, (size_t)x->n * 2u);"


@pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
def test_the_cortex_m4_wide_w0_copies_unaligned_features(tmp_path):
    """The served features are word-aligned, so the copy for dot_dense16_x2 runs only when forced: forced, it is
    bit-exact on the board; forced with the copy one feature off, the board's sums differ. (val_x holds the
    nonzero list before the copy, which equals x when no feature is 0: a feature left out would not show.)"""
    spec, qm = _wide_model()
    spec.samples = 1
    forced = ("etp_kernels.c", _ALIGNED, "} else if (0) {")
    off = "memcpy(val_x, (const int16_t *)x->p + 1, (size_t)(x->n - 1u) * 2u);"
    for k, copy in enumerate([_COPY, off]):
        mm = _verify_model(spec, qm, tmp_path / str(k), forced, target="qemu", also=("etp_kernels.c", _COPY, copy))
        assert (mm is not None) == (k == 1), mm
