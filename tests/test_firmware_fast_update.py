"""The update's and the spike scan's shortcuts (issue 28) are exact and checked: a column or row whose
sum of q^2 is 0 has mean 0 without the division, a one-term update lists the columns where xq is nonzero
once (sq_sums) and computes their multipliers only (the only columns apply reads), and etp_nonzero skips a
zero word of four spikes, and the readout's step sums four rows per spike index; quant_exps takes its maxima
as ORs of magnitudes, sq_sums a one-term update's column factors in 32 bits, isqrt_norm15 its roots from a
tangent start (etp_isqrt30), etp_ema_decay the statistic of a column the gradient missed in 32-bit shifts.
verify-c's harness catches each planted bug below."""

import pytest

from firmware_gen.cases import CaseSpec
from test_firmware_frozen import _verify, frozen_spec

FROZEN = frozen_spec(lr=1e-2, vth=0.05, samples=2, steps=8)
# vth 0.3: some readout inputs stay 0, so a one-term update's list of columns with xq != 0 is not all of them
SPARSE = frozen_spec(lr=1e-2, vth=0.3, samples=2, steps=8)
FROZEN6 = frozen_spec(lr=1e-2, vth=0.05, samples=2, steps=8, n_out=6)  # a group of four readout rows and two
# two hidden layers learning: W1's gradient has a term per target row (T > 1), the path without the shortcut
MULTI = CaseSpec(hidden=(6, 5), recurrent=True, optimizer="colnorm", lr=1e-2, vth=0.05, samples=2, steps=6)


@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "spec,mutate",
    [
        (SPARSE, ("etp_update.c", "c = first ? 0 : (decay", "c = first ? 1 : (decay")),  # a zero column's mean
        # the list of columns with xq != 0 (sq_sums): the scales of other columns, stale factors in apply
        (SPARSE, ("etp_update.c", "j = act != NULL ? act[k] : k;", "j = k;")),
        (SPARSE, ("etp_update.c", "xq[t] = xq[j];", "xq[t] = xq[t];")),
        (MULTI, ("etp_update.c", "act = T == 1 ? SCR->nz_idx_a : NULL;", "act = SCR->nz_idx_a;")),  # T > 1: stale
        (FROZEN, ("etp_kernels.c", "for (k = j; k < j + 4u; k++)", "for (k = j; k < j + 3u; k++)")),  # a word's last
        (FROZEN6, ("etp_kernels.c", "acc = sums[k & 3u];", "acc = sums[0];")),  # the group's first row
        # quant_exps' maxima as ORs of magnitudes: int16 x (the last element's only), int32 d (negatives unsigned)
        (
            FROZEN,
            (
                "etp_update.c",
                "acc |= (uint32_t)(v[j] < 0 ? -v[j] : v[j]);\n        }\n    }\n    return",
                "acc = (uint32_t)(v[j] < 0 ? -v[j] : v[j]);\n        }\n    }\n    return",
            ),
        ),
        (FROZEN, ("etp_update.c", "acc |= d[i] < 0 ? 0u - (uint32_t)d[i] : (uint32_t)d[i];", "acc |= (uint32_t)d[i];")),
        # sq_sums' 32-bit column factors: truncated instead of rounded (int16 x)
        (
            FROZEN,
            (
                "etp_update.c",
                ": etp_round_shift32(v[j], ex);\n            }\n        }\n        for",
                ": v[j] >> ex;\n            }\n        }\n        for",
            ),
        ),
        # a column the gradient missed: its decay without the high word's low bits, or not at all
        (SPARSE, ("etp_update.c", "((lo >> k) | (hi << (32 - k)))", "(lo >> k)")),
        (SPARSE, ("etp_update.c", "decay ? etp_ema_decay(c, beta_shift) :", "decay ? c :")),
        # isqrt30's tangent start below the root, in either half of its range
        (FROZEN, ("etp_primitives.h", "9743u +", "8743u +")),
        (FROZEN, ("etp_primitives.h", "13779u +", "12779u +")),
    ],
)
def test_harness_catches_planted_bugs_in_the_shortcuts(spec, mutate, tmp_path):
    assert _verify(spec, tmp_path, mutate=mutate)[1] is not None, mutate
    assert _verify(spec, tmp_path)[1] is None
