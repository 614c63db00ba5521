/*
 * etp_primitives.h - C twins of edgetp/fixed/primitives.py (same names, prefix etp_).
 *
 * Every function computes exactly what its Python twin computes on int64 values,
 * with the same rounding (round-half-up by shifts, floor division) and saturation.
 * The C standard leaves right shifts of negative values implementation-defined and
 * left shifts of negative values undefined, so floor shifts of negative values go
 * through the identity floor(a / 2^k) = -1 - floor((-a - 1) / 2^k), and exact left
 * shifts are multiplications. Shift counts past 62 give the mathematical result
 * instead of the undefined one. Docstrings: edgetp/fixed/primitives.py.
 */
#ifndef ETP_PRIMITIVES_H
#define ETP_PRIMITIVES_H

#include <stdint.h>

#include "etp_internal.h"

/* sat: clamp a to [lo, hi]. */
static inline int64_t etp_sat(int64_t a, int64_t lo, int64_t hi)
{
    return a < lo ? lo : (a > hi ? hi : a);
}

/* floor_shift: floor(a / 2^k) for k >= 0, any sign of a. */
static inline int64_t etp_floor_shift(int64_t a, int k)
{
    if (k > 63) {
        k = 63;
    }
    if (a >= 0) {
        return a >> k;
    }
    return -1 - ((-(a + 1)) >> k);
}

/* round_shift: round-half-up a / 2^k for k > 0; exact a * 2^-k for k <= 0 (in range). */
static inline int64_t etp_round_shift(int64_t a, int k)
{
    if (k <= 0) {
        return a * ((int64_t)1 << -k);
    }
    if (k > 62) {
        return 0; /* |a| < 2^61: the rounded quotient is 0 */
    }
    return etp_floor_shift(a + ((int64_t)1 << (k - 1)), k);
}

/* round_shift in 32 bits where that is exact: 0 < k <= 30 and |a| < 2^30 (a + 2^(k-1) fits an int32); the
 * floor through a nonnegative offset (no right shift of a negative value). */
static inline int32_t etp_round_shift32(int32_t a, int k)
{
    return (int32_t)(((uint32_t)(a + (1 << (k - 1))) + 0x80000000u) >> k) - (int32_t)(0x80000000u >> k);
}

/* mulhr: round(a w / 2^32) = (a w + 2^31) >> 32, one SMMULR where the DSP extension has it; the
 * portable form biases the int64 to a non-negative value (|a w| < 2^62 - 2^31), so its shift is defined C. */
static inline int32_t etp_mulhr(int32_t a, int32_t w)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(w));
    return r;
#else
    return (int32_t)(((int64_t)a * w + ((int64_t)1 << 31) + ((int64_t)1 << 62)) >> 32) - (1 << 30);
#endif
}

/* div_floor: floor(a / b) for b > 0 (C's '/' truncates; corrected for negative a). */
static inline int64_t etp_div_floor(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && a < 0) {
        q -= 1;
    }
    return q;
}

/* div_round: round-half-up a / b for b > 0 = floor((2a + b) / 2b). */
static inline int64_t etp_div_round(int64_t a, int64_t b)
{
    return etp_div_floor(2 * a + b, 2 * b);
}

/* bitlen: bits of x >= 0 (0 for 0). */
static inline int etp_bitlen(int64_t x)
{
#if defined(__GNUC__)
    return x > 0 ? 64 - __builtin_clzll((unsigned long long)x) : 0;   /* CLZ; the same value */
#else
    int n = 0;
    while (x > 0) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

/* floor(sqrt(n)) for n < 2^32 by Newton's iteration x <- floor((x + floor(n / x)) / 2) from any start
 * floor(sqrt(n)) <= x <= 2^17: it decreases to floor(sqrt(n)) and stops there (the next x is not
 * smaller); x + n / x stays below 2^32. */
static inline uint32_t etp_isqrt_from(uint32_t n, uint32_t x)
{
    uint32_t y;
    for (;;) {
        y = (x + n / x) >> 1;
        if (y >= x) {
            return x;
        }
        x = y;
    }
}

/* isqrt: floor(sqrt(n)) for 0 <= n < 2^62 (digit by digit); n <= 0 gives 0. Below 2^32 by
 * etp_isqrt_from x = 2^ceil(bitlen(n) / 2) >= sqrt(n), the same value in ~5 divisions. */
static inline int64_t etp_isqrt(int64_t n)
{
    int64_t res = 0;
    int64_t bit;
    if (n <= 0) {
        return 0;
    }
    if (n < ((int64_t)1 << 32)) {                      /* x <= 2^16 */
        return etp_isqrt_from((uint32_t)n, (uint32_t)1 << ((etp_bitlen(n) + 1) / 2));
    }
    bit = (int64_t)1 << ((etp_bitlen(n) - 1) & ~1);   /* the highest power of 4 <= n */
    while (bit != 0) {
        if (n >= res + bit) {
            n -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return res;
}

/* isqrt30: floor(sqrt(v)) for 2^28 <= v < 2^30 (a root of 15 bits), by etp_isqrt_from started on the
 * tangent of sqrt at the geometric middle of v's octave (sqrt is concave: the tangent lies above it;
 * A = ceil(r0 / 2) + 1, B = ceil(2^31 / r0), r0 = sqrt(v0), so A + floor(v B / 2^32) >= r0 / 2 +
 * v / (2 r0) >= sqrt(v)): within 1.6 % of the root, two or three divisions instead of five. The same
 * value as etp_isqrt. */
static inline uint32_t etp_isqrt30(uint32_t v)
{
    return etp_isqrt_from(v, v < ((uint32_t)1 << 29) ? 9743u + (uint32_t)(((uint64_t)v * 110218u) >> 32)
                                                     : 13779u + (uint32_t)(((uint64_t)v * 77936u) >> 32));
}

/* exp_neg_q: e^(-d / 2^f) in Q2.30 for d >= 0 in Q.f (0 <= f <= 24); 0 past ETP_EXP_MAX_ARG.
 * y = round_shift(d * LOG2E_Q30, f + 14) is d log2(e) in Q.16 = 2^16 n + r. */
static inline int64_t etp_exp_neg_q(int64_t d, int f)
{
    int64_t y, n, r, i, a, v;
    if (d >= ((int64_t)ETP_EXP_MAX_ARG << f)) {
        return 0;
    }
    y = etp_round_shift(d * ETP_LOG2E_Q30, f + 14);
    n = y >> 16;
    r = y & 0xFFFF;
    i = r >> 8;
    a = etp_exp2_lut[i];
    v = a - etp_round_shift((a - etp_exp2_lut[i + 1]) * (r & 0xFF), 8);
    return etp_round_shift(v, (int)n);
}

/* softmax_q: out[k] = softmax(z / 2^f)[k] in Q0.15 (k < n; 0 <= f <= 30). */
static inline void etp_softmax_q(const int64_t *z, uint16_t n, int f, int64_t *out)
{
    int64_t m = z[0], s = 0;
    uint16_t k;
    for (k = 1; k < n; k++) {
        if (z[k] > m) {
            m = z[k];
        }
    }
    for (k = 0; k < n; k++) {
        out[k] = etp_exp_neg_q(m - z[k], f);
        s += out[k];
    }
    for (k = 0; k < n; k++) {
        out[k] = (out[k] * 2 * ETP_Q15_ONE + s) / (2 * s);   /* both >= 0: '/' is floor */
    }
}

/* xorshift32: Marsaglia (13, 17, 5) on a nonzero state. */
static inline uint32_t etp_xorshift32(uint32_t x)
{
    x ^= (uint32_t)(x << 13);
    x ^= x >> 17;
    x ^= (uint32_t)(x << 5);
    return x;
}

/* sround_shift: floor((a + u) / 2^k), u = r >> (32 - k) for 0 < k <= 32; for k > 32
 * u = r * 2^(k - 32), computed as floor((floor(a / 2^(k-32)) + r) / 2^32), which is
 * the same value without overflow. k <= 0: exact a * 2^-k. */
static inline int64_t etp_sround_shift(int64_t a, int k, uint32_t r)
{
    if (k <= 0) {
        return a * ((int64_t)1 << -k);
    }
    if (k <= 32) {
        return etp_floor_shift(a + (int64_t)(r >> (32 - k)), k);
    }
    return etp_floor_shift(etp_floor_shift(a, k - 32) + (int64_t)r, 32);
}

/* norm15: (m, e) with m * 2^e = x truncated to 15 significant bits (x > 0; x = 0 gives m = 0). */
static inline void etp_norm15(int64_t x, int64_t *m, int *e)
{
    *e = etp_bitlen(x) - 15;
    *m = *e >= 0 ? x >> *e : x * ((int64_t)1 << -*e);
}

/* shl_sat: min(x * 2^k, limit) for x >= 0, k >= 0, 0 < limit < 2^63. */
static inline int64_t etp_shl_sat(int64_t x, int k, int64_t limit)
{
    if (x == 0) {
        return x;
    }
    if (k >= 63 || x > (limit >> k)) {
        return limit;
    }
    return x << k;
}

#endif /* ETP_PRIMITIVES_H */
