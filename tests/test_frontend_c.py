"""The integer frontend's C twin is bit-exact with edgetp.audio.frontend_q (every frame,
every intermediate), under ASan/UBSan too; a planted one-LSB bug is found."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require

from edgetp.audio import frontend_q as fq

REAL = sorted((Path(__file__).parent / "data" / "real").glob("*.wav"))


def _model_stage(name):
    """(integer model, input stage) of a shipped model; ``NAME@g1``: the same model with its log gain
    removed, i.e. the paper's log1p(S / max S), which no shipped model reads any more; ``NAME@rmD``: the
    same model normalised by the causal running maximum with decay D (issue 32)."""
    from edgetp.model import load_model
    from firmware_gen.qmodel import qmodel_for

    name, _, variant = name.partition("@")
    model = load_model(name)
    if variant == "g1":
        model.frontend.pop("log_gain", None)
    elif variant.startswith("rm"):
        model.frontend["running_max_decay"] = int(variant[2:])
    qm, _notes = qmodel_for(model)
    return qm, fq.InputNorm.for_model(model, qm)


# kws-mcu (the device default): its log gain (1000 for the honest-protocol models; L Q.12, e > 0 near the
# maximum); kws-mcu-64k@g1: the paper's log1p(S / max S) on a 64-neuron model's input stage
MODELS = ["kws-mcu", "kws-mcu-64k@g1"]


@pytest.fixture(scope="module", params=MODELS)
def setup(request):
    require("cc")
    qm, norm = _model_stage(request.param)
    if request.param.endswith("@g1"):
        assert norm.log_gain == 1.0
    else:
        from edgetp.model import load_model

        assert norm.log_gain == load_model(request.param).frontend["log_gain"] > 1.0
    return qm, norm


@pytest.fixture(scope="module")
def gain_setup():
    require("cc")
    return _model_stage("kws-mcu-64k")


@pytest.fixture(scope="module")
def rm_setup():
    require("cc")
    qm, norm = _model_stage("kws-mcu@rm2")
    assert norm.running_max_decay == 2 and norm.log_gain == 1000.0
    return qm, norm


def _inputs(n_random, seed=0):
    from firmware_gen.frontend_verify import random_pcm

    out = [(p.name, fq.pcm16(fq.load_pcm16(p))) for p in REAL]
    rng = np.random.default_rng(seed)
    return out + [random_pcm(rng) for _ in range(n_random)]


def test_bit_exact_on_real_speech_and_random_signals(setup):
    from deploy.verify_frontend import verify_frontend

    qm, norm = setup
    s = verify_frontend(qm, norm, _inputs(12), seed=1)
    assert s.ok, s.details
    assert s.utterances == len(REAL) + 12 and s.frames == 101 * s.utterances


def test_random_signals_cover_the_edge_cases():
    from firmware_gen.frontend_verify import random_pcm

    rng = np.random.default_rng(0)
    kinds = {random_pcm(rng)[0] for _ in range(200)}
    assert {"silence", "square", "clipped", "dc", "short"} <= kinds


def test_bit_exact_under_sanitizers(setup):
    from deploy.verify_frontend import verify_frontend

    qm, norm = setup
    s = verify_frontend(qm, norm, _inputs(6, seed=5)[-8:], sanitize=True, seed=2)
    assert s.ok, s.details


@pytest.mark.parametrize(
    "old,new,where",
    [
        # one per FFT stage (each is its own code), the block-exponent shift and the power
        ("xr[3] = y0r + 2 * (p2r + q2r);", "xr[3] = y0r + 2 * (p2r + q2r) + (xr == re + 235);", "power"),
        ("xi[2 * S] = y0i + 2 * (pi - qi);", "xi[2 * S] = y0i + 2 * (pi - qi) - (blk == 15);", "power"),
        ("xr[k + S] = y0r + 4 * (pr - qr);", "xr[k + S] = y0r + 4 * (pr - qr) + (k == 4 && blk == 0);", "power"),
        ("yi[3 * S] = bi + 2 * dr;", "yi[3 * S] = bi + 2 * dr + (S == 15 && k == 7);", "power"),
        ("xr[S] = br + di;", "xr[S] = br + di + (S == 60);", "power"),
        (
            "fe->im[i] = ((pi + bias) >> s) - unbias;",
            "fe->im[i] = ((pi + bias - 1) >> s) - unbias;",
            "power",
        ),
        # the block exponent's pass (in order) and the loading pass (digit-reversed) read the same products
        ("mx |= (pr < 0 ? -pr : pr) | (pi < 0 ? -pi : pi);", "mx |= (pr < 0 ? -pr : pr);", "shift"),
        (
            "fe->power[k] = ETP_FE_MUL(xr, xr) + ETP_FE_MUL(xi, xi);",
            "fe->power[k] = ETP_FE_MUL(xr, xr) + ETP_FE_MUL(xi, xi) + (k == 100);",
            "power",
        ),
        ("fe->mel[b] = (int64_t)acc;", "fe->mel[b] = (int64_t)acc + (b == 39);", "mel"),
        # the input scaling's one-SMMULR form (row shifts 16 .. 32)
        (
            "v = etp_mulhr(feats[j], (int32_t)((uint32_t)etp_fe_norm_m[j] << (32 - s)));",
            "v = etp_mulhr(feats[j], (int32_t)((uint32_t)etp_fe_norm_m[j] << (32 - s))) + (j == 50);",
            "input",
        ),
        # the steps read L made on demand: one row short, frame t reads a row still in log-mel
        (
            "etp_fe_l_upto(fe, st + ETP_FE_DELTA_WIDTH);",
            "etp_fe_l_upto(fe, st + ETP_FE_DELTA_WIDTH - (t == 60));",
            "the inputs the network read while stepping",
        ),
        ("fe->lmax = m;", "fe->lmax = m - (t == 100);", "L["),  # the running maximum: every L moves
        (
            "(int16_t)etp_round_shift(g, ETP_FE_G_F + ETP_FE_G_SHIFT - ETP_FE_L_F);",
            "(int16_t)etp_round_shift(g, ETP_FE_G_F + ETP_FE_G_SHIFT - ETP_FE_L_F) + (b == 3 && (v & 63) == 5);",
            "L[",
        ),
        (
            "feats[2 * ETP_FE_MELS + b] = (int32_t)etp_round_shift(a2, ETP_FE_DELTA_SHIFT);",
            "feats[2 * ETP_FE_MELS + b] = (int32_t)etp_round_shift(a2, ETP_FE_DELTA_SHIFT) + (r == 6);",
            "features[",
        ),
    ],
)
def test_a_planted_one_lsb_bug_is_found(setup, old, new, where):
    """Test the tester: a one-LSB change in the C is reported, naming the intermediate."""
    _planted_bug_is_found(setup, old, new, where)


def _planted_bug_is_found(setup, old, new, where):
    """Verify the C frontend with ``old`` replaced by ``new``: it must report a mismatch in ``where``."""
    from deploy.verify_frontend import verify_frontend

    qm, norm = setup

    def mutate(files):
        assert old in files["etp_frontend.c"]
        return {"etp_frontend.c": files["etp_frontend.c"].replace(old, new, 1)}

    s = verify_frontend(qm, norm, _inputs(0), export_files=mutate)
    assert not s.ok and s.mismatches > 0 and s.errors == 0
    assert where in s.details[0]["message"], s.details[0]


@pytest.mark.parametrize(
    "old,new",
    [
        ("e = v - m + ETP_FE_LOG_OFFSET;", "e = v - m + ETP_FE_LOG_OFFSET + 1;"),  # the gain's offset
        ("+ (int64_t)e * ETP_FE_LN2_Q, ETP_FE_L_ACC_F", "+ (int64_t)(e - 1) * ETP_FE_LN2_Q, ETP_FE_L_ACC_F"),  # e > 0
        ("if (e <= 0)", "if (e <= 64)"),  # branch: e ln 2 dropped
    ],
)
def test_a_planted_log_gain_bug_is_found(gain_setup, old, new):
    """Test the tester, log gain 1000: a wrong offset or a wrong e > 0 branch differs in L."""
    _planted_bug_is_found(gain_setup, old, new, "L[")


def test_running_max_bit_exact(rm_setup):
    """The causal running maximum: every frame's log-mel, L per hop, the last m, the features and inputs."""
    from deploy.verify_frontend import verify_frontend

    qm, norm = rm_setup
    s = verify_frontend(qm, norm, _inputs(12, seed=3), seed=4)
    assert s.ok, s.details
    assert s.utterances == len(REAL) + 12 and s.frames == 101 * s.utterances
    s = verify_frontend(qm, norm, _inputs(4, seed=6)[-6:], sanitize=True, seed=5)
    assert s.ok, s.details


def test_running_max_read_ahead_bit_exact(rm_setup):
    """The running maximum read A = 50 frames later (the shipped models' stream input stage): L of frame t
    when frame t + A is in, the last A rows at the finish; a look-ahead one frame short is found."""
    from dataclasses import replace

    from deploy.verify_frontend import verify_frontend

    qm, norm = rm_setup
    ahead = replace(norm, running_max_ahead=50)
    s = verify_frontend(qm, ahead, _inputs(8, seed=7), seed=8)
    assert s.ok, s.details
    h = "#define ETP_FE_RUNNING_MAX_AHEAD 50 "
    bad = verify_frontend(
        qm,
        ahead,
        _inputs(0),
        export_files=lambda f: {"etp_frontend_cfg.h": f["etp_frontend_cfg.h"].replace(h, h.replace("50", "49"))},
    )
    assert not bad.ok and bad.mismatches > 0 and "L[" in bad.details[0]["message"]


def _rm_bug_is_found(rm_setup, mutate, where="L["):
    from deploy.verify_frontend import verify_frontend

    qm, norm = rm_setup
    s = verify_frontend(qm, norm, _inputs(0), export_files=mutate)
    assert not s.ok and s.mismatches > 0 and s.errors == 0
    assert where in s.details[0]["message"], s.details[0]


def test_a_wrong_decay_in_the_header_is_found(rm_setup):
    """D reaches the C only through the generated header: D = 3 there instead of 2 differs in L."""

    def mutate(files):
        h = files["etp_frontend_cfg.h"]
        assert "#define ETP_FE_RUNNING_MAX 2 " in h
        return {"etp_frontend_cfg.h": h.replace("#define ETP_FE_RUNNING_MAX 2 ", "#define ETP_FE_RUNNING_MAX 3 ")}

    _rm_bug_is_found(rm_setup, mutate)


def test_a_wrong_decay_order_is_found(rm_setup):
    """m[t] = max(m[t-1], peak) - D (the decay after the peak, not before it) differs in L."""

    def mutate(files):
        c = files["etp_frontend.c"]
        for old, new in (
            ("    m -= ETP_FE_RUNNING_MAX;\n", ""),
            ("    fe->lmax = m;\n", "    m -= ETP_FE_RUNNING_MAX;\n    fe->lmax = m;\n"),
        ):
            assert c.count(old) == 1
            c = c.replace(old, new)
        return {"etp_frontend.c": c}

    _rm_bug_is_found(rm_setup, mutate)


def test_an_l_that_waits_for_the_end_is_found(rm_setup):
    """Without the per-hop L, the rows turn into L at the finish with the maximum carried past the end: caught."""
    old = (
        "        etp_fe_l_row(fe->lm[t - ETP_FE_RUNNING_MAX_AHEAD], m);\n"
        "        fe->l_rows = (uint16_t)(t - ETP_FE_RUNNING_MAX_AHEAD + 1);\n"
    )

    def mutate(f):
        assert f["etp_frontend.c"].count(old) == 1
        return {"etp_frontend.c": f["etp_frontend.c"].replace(old, "")}

    _rm_bug_is_found(rm_setup, mutate)


def test_the_decay_reaches_the_c_through_the_generated_header(rm_setup, gain_setup):
    from firmware_gen.generate import render

    assert (
        "#define ETP_FE_RUNNING_MAX 2 " in render(*rm_setup[:1], None, frontend=rm_setup[1]).files["etp_frontend_cfg.h"]
    )
    assert (
        "#define ETP_FE_RUNNING_MAX 0 "
        in render(gain_setup[0], None, frontend=gain_setup[1]).files["etp_frontend_cfg.h"]
    )


def test_the_log_gain_reaches_the_c_through_the_generated_header(gain_setup):
    """The model's g travels like its divisors: generated into etp_frontend_cfg.h from InputNorm."""
    from firmware_gen.generate import render

    qm, norm = gain_setup
    h = render(qm, None, frontend=norm).files["etp_frontend_cfg.h"]
    assert "#define ETP_FE_LOG_OFFSET 2551 " in h and "#define ETP_FE_L_F 12 " in h
    assert "#define ETP_FE_DELTA_SHIFT 18 " in h and "log gain g = 1000" in h
    assert (
        "#define ETP_FE_LOG_OFFSET"
        not in (Path(fq.__file__).parents[2] / "firmware_gen" / "runtime" / "etp_frontend.c").read_text()
    )


def test_cli_json(tmp_path, cli):
    require("cc")
    out = tmp_path / "v.json"
    r = cli("verify-c", "--frontend", REAL[0], "--random-pcm", "2", "--json", out)
    assert r.returncode == 0, r.stderr
    js = json.loads(out.read_text())
    assert list(js)[0] == "frames" and js["frames"] == 3 * 101 and js["mismatches"] == 0
    r = cli("verify-c", "--frontend", tmp_path / "missing.wav")
    assert (
        r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith(f"ERROR {tmp_path / 'missing.wav'}: ")
    )


def test_export_compiles_for_cortex_m4_without_float(setup, tmp_path):
    require("arm-none-eabi-gcc")
    from firmware_gen.build import build_arm
    from firmware_gen.generate import render

    qm, norm = setup
    render(qm, None, frontend=norm).write(tmp_path)
    sizes = build_arm(tmp_path)
    assert "etp_frontend.o" in sizes and "etp_frontend_cfg.o" in sizes
    import subprocess

    nm = subprocess.run(
        ["arm-none-eabi-nm", "-u", str(tmp_path / "arm" / "etp_frontend.o")], capture_output=True, text=True
    ).stdout
    assert "malloc" not in nm and not any(s in nm for s in ("__aeabi_f", "__aeabi_d")), nm


def test_generated_tables_match_the_snapshot():
    """The frontend's generated C (fixed input stage) equals tests/snapshots/frontend; after an
    intended change: python -m firmware_gen.frontend tests/snapshots/frontend."""
    import difflib

    from firmware_gen.frontend import snapshot_files

    snap = Path(__file__).parent / "snapshots" / "frontend"
    for name, text in snapshot_files().items():
        old = (snap / name).read_text()
        assert old == text, "".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True), name, name))


def test_the_fft_tables_the_c_is_specialised_to_are_checked():
    """etp_fe_fft's radix 5/3/4 code reads W_240^t in Q.31 (its products' high words are half the
    turned values); the generator checks the tables, and a one-LSB change of any twiddle (or other
    factors) is refused."""
    from edgetp.errors import EdgetpError
    from firmware_gen.frontend import check_fft_tables

    check_fft_tables(fq.FFT_FACTORS, fq.TW_COS, fq.TW_SIN)
    for table, t in [("cos", 0), ("sin", 17), ("cos", 200), ("sin", 60)]:
        c, s = fq.TW_COS.copy(), fq.TW_SIN.copy()
        (c if table == "cos" else s)[t] += 1
        with pytest.raises(EdgetpError):
            check_fft_tables(fq.FFT_FACTORS, c, s)
    with pytest.raises(EdgetpError, match="specialised"):
        check_fft_tables((4, 4, 5, 3), fq.TW_COS, fq.TW_SIN)


def test_the_input_scaling_is_bit_exact_on_both_of_its_paths(setup):
    """etp_fe_scale takes one SMMULR for row shifts 16 .. 32 (every shipped model's) and the int64 form
    for the rest: divisors that put a third of the features below 16 and a third above 32 are bit-exact,
    and a one-LSB bug in the int64 form is found there."""
    from deploy.verify_frontend import verify_frontend

    qm, norm = setup
    scale = np.array([2.0**-6, 1.0, 2.0**14] * (fq.N_FEATURES // 3))
    both = fq.InputNorm.from_scale(scale, norm.fx, norm.xbits, norm.log_gain)
    assert (both.s < 16).sum() == (both.s > 32).sum() == fq.N_FEATURES // 3
    s = verify_frontend(qm, both, _inputs(2))
    assert s.ok, s.details
    old = "v = (int32_t)etp_sat(etp_round_shift((int64_t)feats[j] * etp_fe_norm_m[j], s), INT32_MIN, INT32_MAX);"
    new = old.replace("etp_fe_norm_m[j], s)", "etp_fe_norm_m[j], s) + (j == 51)")

    def mutate(files):
        assert old in files["etp_frontend.c"]
        return {"etp_frontend.c": files["etp_frontend.c"].replace(old, new, 1)}

    s = verify_frontend(qm, both, _inputs(0), export_files=mutate)
    assert not s.ok and s.mismatches > 0 and "input" in s.details[0]["message"], s.details[:1]
