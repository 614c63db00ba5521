"""The integer audio frontend's generated C: ``etp_frontend_cfg.h`` (sizes, Q-formats) and
``etp_frontend_cfg.c`` (every table: window, twiddles, digit-reversal permutation, mel
weights, log2 and ln(1 + 2^-d) tables, Δ/ΔΔ coefficients, the model's input scaling),
all read from edgetp/audio/frontend_q.py; the routines are the runtime's etp_frontend.c.

:func:`frontend_files` is called by :func:`firmware_gen.generate.render` when an export
carries the frontend (``render(qm, dev, frontend=InputNorm)``).
"""

from __future__ import annotations

import numpy as np

from edgetp.audio import frontend_q as FQ
from edgetp.errors import EdgetpError

CFG_H, CFG_C = "etp_frontend_cfg.h", "etp_frontend_cfg.c"


def _values(a, ctype: str, per_line: int = 12) -> str:
    from firmware_gen.c_text import c_values

    return c_values(np.asarray(a), ctype, per_line)


def tables(norm) -> list[tuple[str, str, np.ndarray, str]]:
    """(C name, C type, values, note) of every flash table, in file order."""
    return [
        ("etp_fe_window", "int16_t", FQ.WINDOW_Q, "periodic Hann Q.15 (1.0 saturates to 32767)"),
        ("etp_fe_perm", "uint16_t", FQ.FFT_PERM, "FFT input order (mixed-radix digit reversal)"),
        ("etp_fe_tw_cos", "int32_t", FQ.TW_COS, "cos(2 pi t / 240) Q2.30"),
        ("etp_fe_tw_sin", "int32_t", FQ.TW_SIN, "-sin(2 pi t / 240) Q2.30"),
        ("etp_fe_rt_cos", "int32_t", FQ.RT_COS, "cos(2 pi k / 480) Q2.30 (real split)"),
        ("etp_fe_rt_sin", "int32_t", FQ.RT_SIN, "-sin(2 pi k / 480) Q2.30"),
        ("etp_fe_mel_w", "int32_t", FQ.MEL_Q, "mel weights Q.15 of the largest, band by band"),
        ("etp_fe_mel_start", "uint16_t", FQ.MEL_START, "first bin of each band"),
        ("etp_fe_mel_len", "uint16_t", FQ.MEL_LEN, "bins of each band"),
        ("etp_fe_log2_lut", "int32_t", FQ.LOG2_LUT, "log2(1 + i/256) Q.16"),
        ("etp_fe_g_lut", "int16_t", FQ.G_LUT, "ln(1 + 2^(-i/32)) Q.15"),
        ("etp_fe_delta_start", "uint8_t", FQ.DELTA_START, "first of the 9 frames delta reads"),
        ("etp_fe_delta_row", "uint8_t", FQ.DELTA_ROW, "coefficient row of each frame"),
        ("etp_fe_delta1", "int32_t", FQ.DELTA1_Q, "delta (Savitzky-Golay, width 9, interp) Q.24"),
        ("etp_fe_delta2", "int32_t", FQ.DELTA2_Q, "delta-delta Q.24"),
        ("etp_fe_norm_m", "int32_t", norm.m, "input scaling: x = round_shift(F * m, s)"),
        ("etp_fe_norm_s", "uint8_t", norm.s, ""),
    ]


def _dims(name: str, a: np.ndarray) -> str:
    return "".join(f"[{d}]" for d in np.shape(a))


def check(norm, xbits: int) -> None:
    check_fft_tables(FQ.FFT_FACTORS, FQ.TW_COS, FQ.TW_SIN)
    FQ.check_log_gain(norm.log_gain)
    FQ.check_decay(norm.running_max_decay)
    if norm.xbits != xbits:
        raise EdgetpError(f"the frontend's input width {norm.xbits} differs from the model's {xbits}")


def check_fft_tables(factors, cos, sin) -> None:
    """What etp_fe_fft's specialised stages (fft240_q's) take for granted: 240 = 4 * 4 * 3 * 5 points
    and Q.31 twiddles W^t = cos - i sin of t / 240 turns, t < 240 (each product's high word is half
    the turned value)."""
    n = len(cos)
    if tuple(factors) != (4, 4, 3, 5) or n != FQ.HALF or len(sin) != n:
        raise EdgetpError(
            f"etp_fe_fft is specialised to {FQ.HALF} = 4 * 4 * 3 * 5 points, "
            f"the frontend asks for {n} = {' * '.join(map(str, factors))}"
        )
    t = np.arange(n)
    lim = (-(2.0**31), 2.0**31 - 1)
    want_c = np.clip(np.round(np.cos(2 * np.pi * t / n) * 2.0**31), *lim)
    want_s = np.clip(np.round(-np.sin(2 * np.pi * t / n) * 2.0**31), *lim)
    if FQ.FFT_TW_F != 31 or not (np.array_equal(cos, want_c) and np.array_equal(sin, want_s)):
        raise EdgetpError("the FFT twiddles are not W_240^t rounded to Q.31")


def frontend_files(norm, stamp_text: str, xbits: int) -> dict:
    """{file name: text} of the generated frontend configuration."""
    check(norm, xbits)
    from firmware_gen.c_text import c_define as D, header_open

    h = [
        *header_open(stamp_text, "ETP_FRONTEND_CFG_H"),
        "/* sizes (edgetp.audio.frontend_q) */",
        D("ETP_FE_SAMPLES", FQ.N_SAMPLES, "samples per utterance (16 kHz)"),
        D("ETP_FE_N_FFT", FQ.N_FFT, "window"),
        D("ETP_FE_HALF", FQ.HALF, "complex FFT length, centring pad"),
        D("ETP_FE_HOP", FQ.HOP),
        D("ETP_FE_FRAMES", FQ.N_FRAMES),
        D("ETP_FE_MELS", FQ.N_MELS),
        D("ETP_FE_FEATURES", FQ.N_FEATURES),
        D("ETP_FE_N_BINS", FQ.N_BINS, "spectrum bins the mel bands read"),
        D("ETP_FE_N_FACTORS", len(FQ.FFT_FACTORS)),
        D("ETP_FE_DELTA_WIDTH", FQ.DELTA1_Q.shape[1]),
        "",
        "/* Q-formats and shifts (docs/fixed-point.md section 9) */",
        D("ETP_FE_FRAME_BITS", FQ.FRAME_BITS, "frame block exponent: max |y| < 2^FRAME_BITS"),
        D("ETP_FE_TW_F", FQ.TW_F, "real-FFT split twiddles Q2.30"),
        D("ETP_FE_FFT_TW_F", FQ.FFT_TW_F, "FFT twiddles Q.31"),
        D("ETP_FE_P_SHIFT", FQ.P_SHIFT, "power >> P_SHIFT before the mel weights"),
        D("ETP_FE_LOG_F", FQ.LOG_F, "log-mel int16 Q.LOG_F"),
        D("ETP_FE_LOG_ZERO", f"({FQ.LOG_ZERO})", "log-mel of a zero band"),
        D("ETP_FE_G_F", FQ.G_F, "G_LUT Q.G_F"),
        D("ETP_FE_G_SHIFT", FQ.G_SHIFT, "log-mel units per G_LUT step: 2^G_SHIFT"),
        D("ETP_FE_G_LIMIT", (len(FQ.G_LUT) - 1) << FQ.G_SHIFT, "|e| at and beyond which ln(1 + 2^-|e|) = 0"),
        D("ETP_FE_L_ACC_F", FQ.L_ACC_F, "L before its rounding, when e > 0"),
        D("ETP_FE_G_ACC_SHIFT", FQ.G_ACC_SHIFT, "interpolated G_LUT -> Q.L_ACC_F"),
        D("ETP_FE_LN2_Q", FQ.LN2_Q, "ln 2 in Q.(L_ACC_F - LOG_F): e * LN2_Q is e ln 2 in Q.L_ACC_F"),
        D("ETP_FE_FEAT_F", FQ.FEAT_F, "features int32 Q.FEAT_F"),
        "",
        f"/* the model's log gain g = {norm.log_gain:g}: L = ln(1 + g S / max S) = ln(1 + 2^e), e = l - max l + C */",
        D("ETP_FE_LOG_OFFSET", norm.log_offset, "C = round(log2(g) * 2^LOG_F)"),
        D("ETP_FE_L_F", norm.l_frac, "L int16 Q.L_F (the finest that holds ln(1 + g))"),
        D("ETP_FE_DELTA_SHIFT", FQ.DELTA_F + norm.l_frac - FQ.FEAT_F, f"delta sums Q.({FQ.DELTA_F} + L_F) -> Q.FEAT_F"),
        D(
            "ETP_FE_RUNNING_MAX",
            norm.running_max_decay or 0,
            "max S: 0 the utterance's; D > 0 the causal running maximum, falling D / 2^LOG_F octave per frame",
        ),
        D(
            "ETP_FE_RUNNING_MAX_AHEAD",
            norm.running_max_ahead,
            "A: frame t is normalised by the running maximum of frame t + A (0 with the utterance's)",
        ),
        "",
    ]
    body = [stamp_text, "#include <stdint.h>", "", '#include "etp_frontend_cfg.h"', ""]
    for name, ctype, a, note in tables(norm):
        a = np.asarray(a)
        h.append(f"extern const {ctype} {name}{_dims(name, a)};")
        body.append(f"/* {'x'.join(map(str, a.shape))}{': ' + note if note else ''} */")
        if a.ndim == 2:
            rows = ",\n".join("    " + _values(r, ctype, 16).replace("\n", "\n    ") for r in a)
            body.append(f"const {ctype} {name}{_dims(name, a)} = {{\n{rows}\n}};")
        else:
            body.append(f"const {ctype} {name}{_dims(name, a)} = {_values(a, ctype)};")
    h += ["", "#endif /* ETP_FRONTEND_CFG_H */", ""]
    body.append("")
    return {CFG_H: "\n".join(h), CFG_C: "\n".join(body)}


def flash_bytes(norm) -> int:
    """Bytes of the frontend's tables (flash)."""
    size = {"int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint8_t": 1}
    return int(sum(np.size(a) * size[t] for _n, t, a, _note in tables(norm)))


def ram_bytes() -> int:
    """sizeof(etp_fe_t) on a 32-bit target (its fields, padded to 8 bytes)."""
    n = (
        2 * FQ.N_FFT
        + 2 * FQ.N_FRAMES * FQ.N_MELS
        + 2 * 4 * FQ.HALF
        + 8 * FQ.N_BINS
        + 8 * FQ.N_MELS
        + 4
        + 4
        + 4
        + 2
        + 2
        + 2
        + 1
        + 4
        + 4
    )
    return (n + 7) // 8 * 8


SNAPSHOT_STAMP = (
    "/*\n * {file} - the integer audio frontend's tables (snapshot: unit input scaling, fx 12, int16)\n"
    " * Generated by firmware_gen.frontend; do not edit.\n */\n"
)


def snapshot_files() -> dict:
    """The frontend's generated files for a fixed input stage (all divisors 1, Q.12, int16):
    ``tests/snapshots/frontend`` holds them, so a change of any table or format shows as a diff."""
    from edgetp.audio.frontend_q import InputNorm

    norm = InputNorm.from_scale(None, 12, 16)
    files = frontend_files(norm, SNAPSHOT_STAMP.format(file=CFG_H), 16)
    files[CFG_C] = files[CFG_C].replace(SNAPSHOT_STAMP.format(file=CFG_H), SNAPSHOT_STAMP.format(file=CFG_C), 1)
    return files


def main(argv=None) -> int:
    """``python -m firmware_gen.frontend OUT_DIR``: (re)write the frontend snapshot."""
    from firmware_gen.c_text import snapshot_main

    return snapshot_main(argv, "firmware_gen.frontend", snapshot_files)


if __name__ == "__main__":
    raise SystemExit(main())
