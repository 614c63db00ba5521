/* etp_model.c -- TEST DOUBLE (see etp_model.h); twin: fake_model.py.
 * state: w int16 [N_OUT][N_IN] (trained), acc int32 [N_OUT] (reset per sample),
 *        steps uint32, rng uint32 (xorshift32, seeded by etp_init). */
#include "etp_model.h"

static int16_t w[ETP_N_OUT * ETP_N_IN];
static int32_t acc[ETP_N_OUT];
static uint32_t steps[1], rng[1];
static const etp_tensor_t tensors[] = {
    {"w", 2, 1, ETP_N_OUT * ETP_N_IN, w},
    {"acc", 4, 1, ETP_N_OUT, acc},
    {"steps", 5, 1, 1, steps},
    {"rng", 5, 1, 1, rng},
};

static int32_t sat32(int64_t v) { return v > 2147483647 ? 2147483647 : v < -2147483647 - 1 ? -2147483647 - 1 : (int32_t)v; }
static int16_t sat16(int32_t v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }

etp_status_t etp_init(uint32_t seed) {
    for (int i = 0; i < ETP_N_OUT * ETP_N_IN; i++) w[i] = (int16_t)((i * 37) % 64 - 32);
    rng[0] = seed * 2654435761u + 1u;
    steps[0] = 0;
    etp_reset_state();
    return ETP_OK;
}

void etp_reset_state(void) { for (int k = 0; k < ETP_N_OUT; k++) acc[k] = 0; }

static void forward(const etp_x_t *x) {
    for (int k = 0; k < ETP_N_OUT; k++) {
        int64_t s = 0;
        for (int j = 0; j < ETP_N_IN; j++) s += (int64_t)w[k * ETP_N_IN + j] * x[j];
        acc[k] = sat32((int64_t)acc[k] + (s >> 8));
    }
}

etp_status_t etp_infer_step(const etp_x_t *x) { forward(x); return ETP_OK; }

etp_status_t etp_train_step(const etp_x_t *x, uint16_t label) {
    if (label >= ETP_N_OUT) return ETP_EBADARG;
    forward(x);
    uint32_t r = rng[0];
    r ^= r << 13; r ^= r >> 17; r ^= r << 5;
    rng[0] = r;
    for (int j = 0; j < ETP_N_IN; j++)
        w[label * ETP_N_IN + j] = sat16(w[label * ETP_N_IN + j] + (x[j] >> 6) + (int32_t)((r >> j) & 1u));
    steps[0]++;
    return ETP_OK;
}

uint16_t etp_predict(void) {
    uint16_t best = 0;
    for (uint16_t k = 1; k < ETP_N_OUT; k++) if (acc[k] > acc[best]) best = k;
    return best;
}

static uint32_t crc(uint32_t c, const void *p, uint32_t n) {
    const uint8_t *b = (const uint8_t *)p;   /* little-endian hosts/targets only */
    c = ~c;
    while (n--) { c ^= *b++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u))); }
    return ~c;
}

uint32_t etp_state_digest(void) {
    uint32_t c = 0;
    c = crc(c, w, sizeof w);
    c = crc(c, acc, sizeof acc);
    c = crc(c, steps, sizeof steps);
    return crc(c, rng, sizeof rng);
}

uint32_t etp_tensor_count(void) { return sizeof tensors / sizeof tensors[0]; }
const etp_tensor_t *etp_tensor(uint32_t i) { return i < etp_tensor_count() ? &tensors[i] : 0; }
