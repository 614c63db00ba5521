/*
 * etp_api.c - initialisation, state reset, settings, digest and the tensor table
 * (docs/firmware-api.md). The steps themselves are in etp_network.c.
 */
#include <stddef.h>

#include "etp_bytes.h"
#include "etp_primitives.h"

#define NET (&etp_net)

static const uint8_t dtype_size[] = ETP_DTYPE_SIZES;

static void zero_tensor(const etp_tensor_t *t)
{
    uint8_t *b = (uint8_t *)t->data;
    uint32_t i, n = t->count * dtype_size[t->dtype];
    for (i = 0; i < n; i++) {
        b[i] = 0;
    }
}

void etp_reset_state(void)
{
    uint16_t i;
    for (i = 0; i < ETP_N_STATE_TENSORS; i++) {
        zero_tensor(&NET->tensors[etp_state_tensors[i]]);
    }
}

etp_status_t etp_init(uint32_t seed)
{
    uint16_t n;
    uint32_t i, x;
    for (n = 0; n < ETP_N_PARAMS; n++) {
        const etp_param_t *p = &NET->params[n];
        for (i = 0; i < (uint32_t)p->rows * p->cols; i++) {
            p->w[i] = p->w_init[i];
        }
        for (i = 0; i < p->rows; i++) {
            p->rr[i] = 0;
        }
        for (i = 0; i < p->cols; i++) {
            p->cc[i] = 0;
        }
    }
    x = seed ^ ETP_PRNG_SEED_XOR;            /* primitives.prng_seed */
    *NET->rng = x != 0 ? x : ETP_PRNG_SEED_XOR;
    *NET->opt_steps = 0;
    NET->opt_cfg[ETP_CFG_KIND] = ETP_OPT_KIND_DEFAULT;
    NET->opt_cfg[ETP_CFG_LR_M] = ETP_LR_M_DEFAULT;
    NET->opt_cfg[ETP_CFG_LR_E] = ETP_LR_E_DEFAULT;
    NET->opt_cfg[ETP_CFG_BETA_SHIFT] = ETP_BETA_SHIFT_DEFAULT;
    NET->opt_cfg[ETP_CFG_TRAIN_ALL] = ETP_TRAIN_ALL_DEFAULT;
    NET->opt_cfg[ETP_CFG_CLIP] = ETP_CLIP_DEFAULT;
    etp_reset_state();
    return ETP_OK;
}

/* m * 2^-e <= m2 * 2^-e2, exactly (m, m2 in 0..255; the Python twin: tensors.lr_le). */
static int lr_le(int32_t m, int32_t e, int32_t m2, int32_t e2)
{
    int32_t d = e2 - e;
    if (m == 0) {
        return 1;
    }
    if (m2 == 0 || d >= 8) {
        return 0;                  /* m * 2^d >= 256 > m2 */
    }
    if (d <= -8) {
        return 1;                  /* m * 2^d < 1 <= m2 */
    }
    return d >= 0 ? (m << d) <= m2 : m <= (m2 << -d);
}

/* lr_e in the contract's range and the export's range holds lr (DeviceConfig.lr_in_range). */
static int lr_in_range(int32_t lr_m, int32_t lr_e)
{
    return lr_e >= ETP_CFG_LR_E_MIN && lr_e <= ETP_CFG_LR_E_MAX && lr_le(ETP_LR_MIN_M, ETP_LR_MIN_E, lr_m, lr_e) &&
           lr_le(lr_m, lr_e, ETP_LR_MAX_M, ETP_LR_MAX_E);
}

etp_status_t etp_set_lr(uint8_t lr_m, int16_t lr_e)
{
    if (!lr_in_range(lr_m, lr_e)) {
        return ETP_EBADARG;
    }
    NET->opt_cfg[ETP_CFG_LR_M] = lr_m;
    NET->opt_cfg[ETP_CFG_LR_E] = lr_e;
    return ETP_OK;
}

etp_status_t etp_set_optimizer(uint8_t kind, uint8_t beta_shift, uint8_t train_all, int8_t clip)
{
    /* a frozen-hidden build learns the readout only: train_all = 1 is refused */
    if (kind < ETP_CFG_KIND_MIN || kind > ETP_CFG_KIND_MAX || beta_shift > ETP_CFG_BETA_SHIFT_MAX ||
        train_all > ETP_TRAIN_ALL_LIMIT || clip < ETP_CFG_CLIP_MIN ||
        clip > ETP_CFG_CLIP_MAX) {
        return ETP_EBADARG;
    }
    NET->opt_cfg[ETP_CFG_KIND] = kind;
    NET->opt_cfg[ETP_CFG_BETA_SHIFT] = beta_shift;
    NET->opt_cfg[ETP_CFG_TRAIN_ALL] = train_all;
    NET->opt_cfg[ETP_CFG_CLIP] = clip;
    return ETP_OK;
}

/* zlib.crc32 of every tensor's elements as little-endian bytes, in table order. */
uint32_t etp_state_digest(void)
{
    uint32_t c = 0, t, k;
    uint8_t le[8];
    for (t = 0; t < NET->n_tensors; t++) {
        const etp_tensor_t *e = &NET->tensors[t];
        uint32_t size = dtype_size[e->dtype];
        for (k = 0; k < e->count; k++) {
            etp_wr_le(le, etp_elem_get(e->data, size, k), size);
            c = etp_crc32(c, le, size);
        }
    }
    return c;
}

uint32_t etp_tensor_count(void)
{
    return NET->n_tensors;
}

const etp_tensor_t *etp_tensor(uint32_t i)
{
    return i < NET->n_tensors ? &NET->tensors[i] : NULL;
}

const char *etp_label(uint16_t k)
{
    return k < ETP_N_OUT ? NET->labels[k] : "";
}
