/*
 * etp_api.h - the public API of an exported edgetp model (docs/firmware-api.md).
 *
 * Included by the generated etp_model.h, which defines the model's sizes, its types
 * etp_x_t / etp_w_t and its constants first. Batch size 1: one utterance at a time,
 * one frame per call. Plain C99, no dynamic allocation, not reentrant (one model,
 * one set of static arrays).
 *
 * Typical use:
 *     etp_init(seed);                          once (weights <- initial values)
 *     etp_reset_state();                       at the start of every utterance
 *     for each frame: etp_train_step(x, label) or etp_infer_step(x)
 *     k = etp_predict();                       after the last frame
 */
#ifndef ETP_API_H
#define ETP_API_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ETP_OK = 0, ETP_EBADARG = 1 } etp_status_t;

/* The dtype codes ETP_I8 .. ETP_I64 of etp_tensor_t and the optimizer kinds ETP_OPT_SGD, ETP_OPT_ROWNORM,
 * ETP_OPT_COLNORM (ETP_CFG_KIND_MIN .. ETP_CFG_KIND_MAX; code 0, the removed factored rule, is refused) are
 * generated into etp_contract.h from their Python definitions (edgetp.fixed.contract DTYPES, OPT_CODES). */

typedef struct {
    const char *name;   /* "W0", "v0", "rng", ... (docs/firmware-api.md lists them) */
    uint8_t dtype;      /* ETP_I8 ... ETP_I64 */
    uint8_t writable;   /* 1: RAM, the host may write it; 0: constant in flash */
    uint32_t count;     /* number of elements (row-major) */
    void *data;
} etp_tensor_t;

/* Trainable weights <- their initial values (from the const flash copies), optimizer
 * state zeroed and its settings reset to the exported defaults, PRNG seeded as
 * edgetp.fixed.primitives.prng_seed(seed), neuron state reset. Always ETP_OK. */
etp_status_t etp_init(uint32_t seed);

/* Zero the neuron state (data stream, target set, readout, step count): start of a
 * sample. Weights and optimizer state are kept. */
void etp_reset_state(void);

/* One frame of ETP_N_IN features in Q.ETP_X_FRAC, data stream only.
 * ETP_EBADARG if x is NULL. */
etp_status_t etp_infer_step(const etp_x_t *x);

/* One frame with learning (forward pass of both streams - of the data stream alone when
 * opt_cfg's train_all is 0 (readout only) -, local gradients, one optimizer step). Update every k (ETP_UPDATE_EVERY, edgetp: update_every): the step
 * learns - local gradients and one optimizer step - only when t % k == 0, t the steps
 * (training or inference) since the reset, before this one; on the other steps only the
 * forward pass of both streams runs, the same as on a learning step, so the neuron state
 * does not depend on k. k = 1 learns at every step. Python twin:
 * edgetp.fixed.network_q.train_step_q. ETP_EBADARG if x is NULL, label >= ETP_N_OUT, opt_cfg
 * holds an invalid setting or a normalised rule's statistic lies outside [0, ETP_STAT_MAX] (also on a
 * step that would not learn); nothing changes then. */
etp_status_t etp_train_step(const etp_x_t *x, uint16_t label);

/* argmax of the readout u (lowest index on ties, as NumPy's argmax). */
uint16_t etp_predict(void);

/* CRC-32 (IEEE 802.3: reflected, polynomial 0xEDB88320, init 0xFFFFFFFF, final xor
 * 0xFFFFFFFF; zlib.crc32) over every tensor of the table in table order, each element
 * as little-endian bytes. */
uint32_t etp_state_digest(void);

uint32_t etp_tensor_count(void);
const etp_tensor_t *etp_tensor(uint32_t i);   /* NULL if i >= etp_tensor_count() */
/* The tensor named `name`, or NULL unless one has that name, that dtype (ETP_I8 ... ETP_U32) and that element
 * count: a caller that casts t->data is then sure of what it points at. Inline over the two calls above, so a
 * test double of the table has it too. */
static inline const etp_tensor_t *etp_tensor_find(const char *name, uint8_t dtype, uint32_t count)
{
    uint32_t i;
    for (i = 0; i < etp_tensor_count(); i++) {
        const etp_tensor_t *t = etp_tensor(i);
        if (strcmp(t->name, name) == 0) return t->dtype == dtype && t->count == count ? t : NULL;
    }
    return NULL;
}

/* Extensions (optional for a host): the optimizer settings also live in the writable
 * tensor "opt_cfg" = {kind, lr_m, lr_e, beta_shift, train_all, clip}.
 * Learning rate lr ~= lr_m * 2^-lr_e (edgetp.fixed.update_q.lr_code); lr_e in -64..127 and lr within
 * the range fixed at export (ETP_LR_MIN_M * 2^-ETP_LR_MIN_E .. ETP_LR_MAX_M * 2^-ETP_LR_MAX_E), else
 * ETP_EBADARG and nothing changes. */
etp_status_t etp_set_lr(uint8_t lr_m, int16_t lr_e);
/* kind ETP_OPT_ROWNORM, ETP_OPT_COLNORM or ETP_OPT_SGD, beta_shift 0..62, train_all 1 (every layer)
 * or 0 (readout only: etp_train_step then runs the data stream alone, the target set is left as it is),
 * clip -1 (no limit) or 0..62 (rownorm/colnorm: each weight moves at most 2^clip * lr per step).
 * A frozen-hidden build (ETP_FROZEN_HIDDEN: hidden layers constant in flash) accepts train_all 0 only. */
etp_status_t etp_set_optimizer(uint8_t kind, uint8_t beta_shift, uint8_t train_all, int8_t clip);
/* Class name k ("" if k >= ETP_N_OUT). */
const char *etp_label(uint16_t k);

#ifdef __cplusplus
}
#endif

#endif /* ETP_API_H */
