"""The network step's faster C paths (issue 28) are bit-exact and checked: the recurrent spike sums
of four rows at once (sum_at_h4, and the rows past the last group of four), the dense int8 rows
taken four at a time (dot_dense8_x4; on the host each row goes through dot_dense8, on a Cortex-M4
through 32-bit SMLAD, which `edgetp hil --target qemu` checks) and lif_dense8, the rows of dense
features in 32 bits. verify-c's harness catches each planted bug below on a frozen int8 hidden layer
of 6 and 5 recurrent neurons (layer 0 takes lif_dense8, layer 1's spikes the general loop)."""

import pytest

from test_firmware_frozen import _verify, frozen_spec

SPEC = dict(lr=1e-2, vth=0.05, samples=2, steps=8)


@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "mutate",
    [
        ("etp_kernels.c", "a2 += r2[j];", "a2 += r3[j];"),  # one row of a group of four read twice
        ("etp_kernels.c", "rs = rec[i & 3u];", "rs = rec[0];"),  # the group's first sum for all four
        ("etp_kernels.c", "d[1] = dot_dense8(r1, xp, n);", "d[1] = dot_dense8(r2, xp, n);"),  # a row of four read twice
        ("etp_kernels.c", "rr = rec_shift32(rec[k], sh_r);", "rr = rec_shift32(rec[0], sh_r);"),  # lif_dense8: one sum
        ("etp_kernels.c", "(uint32_t)1 << -k", "(uint32_t)2 << -k"),  # the recurrent left shift
        ("etp_kernels.c", "sum_at_h(R + (uint32_t)(i + k) * n", "sum_at_h(R + (uint32_t)i * n"),  # lif_dense8's tail
        ("etp_kernels.c", "p < vth_q ? p : hard ? 0 :", "p < vth_q ? p : hard ? 1 :"),  # lif_dense8's reset
        ("etp_kernels.c", "(a + (1 << (k - 1)))", "(a + (1 << k))"),  # round_shift32's rounding
    ],
)
def test_harness_catches_planted_bugs_in_the_fast_paths(mutate, tmp_path):
    spec = frozen_spec(**SPEC)
    assert _verify(spec, tmp_path, mutate=mutate)[1] is not None, mutate
    assert _verify(spec, tmp_path)[1] is None


@pytest.mark.needs("cc")
def test_the_sanitizers_catch_a_group_of_four_past_the_last_row(tmp_path):
    """The first row past the last group of four taken as a group: its own sum is still right, but
    the group reads rows that do not exist (ASan in verify-c --sanitize)."""
    spec = frozen_spec(**SPEC)
    old = "} else if (i >= (n & ~3u)) {        /* the last n % 4 rows */\n                rs = sum_at_h("
    mutate = ("etp_kernels.c", old, old.replace(">=", ">"))
    assert _verify(spec, tmp_path, mutate=mutate)[1] is None  # the values agree
    assert _verify(spec, tmp_path, sanitize=True, mutate=mutate)[1] is not None


@pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
def test_the_cortex_m4_paths_on_the_emulated_board(tmp_path):
    """dot_dense8_x4's Cortex-M4 body (inline assembly, eight inputs a round, then a group of four in
    pair_inputs8's order, then the rest) runs only on the board: 15 features take all three parts. A
    planted bug in the assembly (one row's odd products against the even inputs) is found there."""
    from deploy.bitexact import verify_export
    from firmware_gen.cases import build_model, build_script, device_config
    from firmware_gen.generate import render
    from firmware_gen.tensors import TableDevice

    spec = frozen_spec(**SPEC, n_in=15)
    qm, dev = build_model(spec), device_config(spec)
    old = '"smlad %[a3], %[w], %[xb], %[a3]\\n\\t"'
    for mutate in (False, True):
        ex = render(qm, dev)
        if mutate:
            assert old in ex.files["etp_kernels.c"]
            ex.files["etp_kernels.c"] = ex.files["etp_kernels.c"].replace(old, old.replace("xb", "xa"), 1)
        mm = verify_export(
            ex, TableDevice(qm, dev), build_script(spec), 0, False, tmp_path / str(mutate), target="qemu"
        )[1]
        assert (mm is not None) == mutate, mm
