"""The network step's faster C paths (issue 28) are bit-exact and checked: the recurrent spike sums
of four rows at once (sum_at_h4, and the rows past the last group of four), the dense int8 rows
taken two at a time (dot_dense8_x2; on the host both rows go through dot_dense8, on a Cortex-M4
through 32-bit SMLAD, which `edgetp hil --target qemu` checks). verify-c's harness catches each
planted bug below on a frozen int8 hidden layer of 6 and 5 recurrent neurons."""
import pytest

from test_firmware_frozen import _verify, frozen_spec

SPEC = dict(lr=1e-2, vth=0.05, samples=2, steps=8)


@pytest.mark.needs("cc")
@pytest.mark.parametrize("mutate", [
    ("etp_kernels.c", "a2 += r2[j];", "a2 += r3[j];"),                # one row of a group of four read twice
    ("etp_kernels.c", "rs = rec[i & 3u];", "rs = rec[0];"),           # the group's first sum for all four
    ("etp_kernels.c", "            dot = next;", "            dot = 2 * next;"),   # the odd row's dense sum doubled
])
def test_harness_catches_planted_bugs_in_the_fast_paths(mutate, tmp_path):
    spec = frozen_spec(**SPEC)
    assert _verify(spec, tmp_path, mutate=mutate)[1] is not None, mutate
    assert _verify(spec, tmp_path)[1] is None


@pytest.mark.needs("cc")
def test_the_sanitizers_catch_a_group_of_four_past_the_last_row(tmp_path):
    """The first row past the last group of four taken as a group: its own sum is still right, but
    the group reads rows that do not exist (ASan in verify-c --sanitize)."""
    spec = frozen_spec(**SPEC)
    mutate = ("etp_kernels.c", "} else if (i >= (n & ~3u)) {", "} else if (i > (n & ~3u)) {")
    assert _verify(spec, tmp_path, mutate=mutate)[1] is None                  # the values agree
    assert _verify(spec, tmp_path, sanitize=True, mutate=mutate)[1] is not None
