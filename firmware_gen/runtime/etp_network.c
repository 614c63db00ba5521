/*
 * etp_network.c - C twin of edgetp/fixed/network_q.py for batch 1, and the public API.
 *
 * etp_train_step = train_step_q: forward pass of the data stream and of the target set
 * (forward_q), every layer's local error and one optimizer step per trainable tensor
 * (gradients_q + update_q), the last two only on the steps t % ETP_UPDATE_EVERY == 0
 * since the reset; with train_all = 0 (readout only) the target set is not run.
 * etp_infer_step = infer_step_q. State lives in the arrays of the generated etp_model.c,
 * reached through etp_net (etp_internal.h). A frozen-hidden build (ETP_FROZEN_HIDDEN) has
 * no target set: only the data stream and the readout's update are compiled in.
 */
#include <stddef.h>

#include "etp_kernels.h"
#include "etp_primitives.h"
#include "etp_update.h"

#define NET (&etp_net)
#define K ETP_N_TARGETS
#if ETP_FROZEN_HIDDEN
#define READOUT 0               /* etp_params: the readout alone (layout.device_trainable) */
#else
#define READOUT ETP_N_LAYERS    /* etp_params: W0..WL, R0..: the readout is W_L */
#endif

#if ETP_ROW_SHIFTS
#define ROW_SHIFTS(ly) ((ly)->sh_x_row)   /* row scales: the data stream's W x, one shift per neuron */
#else
#define ROW_SHIFTS(ly) NULL
#endif

static const etp_x_t *frame;   /* the frame of the running etp_train_step */

static etp_vec_t vec(const void *p, uint16_t n, uint8_t bits)
{
    etp_vec_t v;
    v.p = p;
    v.n = n;
    v.bits = bits;
    return v;
}

#if !ETP_FROZEN_HIDDEN
/* Row k of the target set's one-hot input (target_inputs_q): class k for "classes", the label for "batch". */
static const int8_t *onehot(uint16_t k, uint16_t label)
{
    static uint16_t hot = 0;                  /* the one nonzero entry of NET->onehot (or none) */
    NET->onehot[hot] = 0;
    hot = ETP_TARGETS_CLASSES ? k : label;
    NET->onehot[hot] = 1;
    return NET->onehot;
}
#endif

/* network_q._layer for one row: data stream (W, R) or target stream (S, S_rec on layer 0). */
static void layer_row(const etp_layer_t *ly, int target, int32_t *v, int8_t *s, const int8_t *s_prev,
                      int32_t *vpre, const etp_vec_t *in)
{
    int prop = target && ly->S != NULL;
    etp_vec_t sp = vec(s_prev, ly->n, 8);
    etp_lif_step_q(v, s, vpre, ly->n, in, prop ? ly->S : ly->W, prop ? 0 : ly->w16, target ? ly->sh_xt : ly->sh_x,
                   target ? NULL : ROW_SHIFTS(ly), &sp,
                   prop ? ly->S_rec : ly->R, prop ? 0u : ly->r_stride, target ? ly->sh_rt : ly->sh_r, ETP_ALPHA_Q,
                   ETP_VTH_Q, ETP_HARD_RESET,
                   NET->nz_idx_a, NET->nz_val_a, NET->nz_idx_b, NET->nz_val_b);
}

#if !ETP_FROZEN_HIDDEN
/* Layer 0's class target stream at training step tau = *tsteps since the reset, read from flash
 * (layout.target_stream_table): row k's spikes are those of frame tau, or of P + (tau - P) mod Q
 * past its first cycle (P + Q frames), unpacked into st (one bit each, a byte at a time). A row
 * that does not repeat (Q = 0) has its first P frames stored and, in tstream_v, its membrane after
 * them: the step that reads frame P - 1 loads that membrane into vt0_resume, and from step P on
 * the row runs here (network_q._layer's twin, as an untabulated stream does) from the reference's
 * own state. The traces follow as in trace_step_q. */
static void tabulated_stream(const etp_layer_t *ly)
{
    uint32_t tau = *NET->tsteps, nb = ((uint32_t)ly->n + 7u) / 8u, i, b;
    uint16_t k, r = 0;           /* r: rows that do not repeat before row k */
    for (k = 0; k < K; k++) {
        uint32_t pre = NET->tstream_pre[k], per = NET->tstream_per[k];
        int8_t *s = ly->st + (uint32_t)k * ly->n;
        if (per == 0u && tau >= pre) {
            etp_vec_t in = vec(onehot(k, 0), ETP_N_OUT, 8);
            layer_row(ly, 1, NET->vt0_resume + (uint32_t)r * ly->n, s, s, NULL, &in);
        } else {
            uint32_t f = tau < pre + per ? tau : pre + (tau - pre) % per;
            const uint8_t *bits = NET->tstream + (NET->tstream_off[k] + f) * nb;
            for (i = 0; i + 8u <= ly->n; i += 8u) {
                b = *bits++;
                s[i] = (int8_t)(b & 1u);
                s[i + 1u] = (int8_t)((b >> 1) & 1u);
                s[i + 2u] = (int8_t)((b >> 2) & 1u);
                s[i + 3u] = (int8_t)((b >> 3) & 1u);
                s[i + 4u] = (int8_t)((b >> 4) & 1u);
                s[i + 5u] = (int8_t)((b >> 5) & 1u);
                s[i + 6u] = (int8_t)((b >> 6) & 1u);
                s[i + 7u] = (int8_t)(b >> 7);
            }
            for (b = i < ly->n ? *bits : 0u; i < ly->n; i++, b >>= 1) {
                s[i] = (int8_t)(b & 1u);
            }
            if (per == 0u && tau + 1u == pre) {
                const int32_t *v_at = NET->tstream_v + (uint32_t)r * ly->n;
                int32_t *v = NET->vt0_resume + (uint32_t)r * ly->n;
                for (i = 0; i < ly->n; i++) {
                    v[i] = v_at[i];
                }
            }
        }
        r += per == 0u;
        etp_trace_step_q(ly->trt + (uint32_t)k * ly->n, s, ly->n, ETP_LAMBDA_Q, ETP_FT);
    }
}

/* forward_q's target-set part for layer l (after the data stream's layer l). */
static void target_layer(uint16_t l, uint16_t label)
{
    const etp_layer_t *ly = &NET->layers[l];
    uint16_t k;
    uint32_t i;
    if (ly->st_prev != NULL) {
        for (i = 0; i < (uint32_t)K * ly->n; i++) {
            ly->st_prev[i] = ly->st[i];
        }
    }
    if (l == 0 && NET->tstream != NULL) {
        tabulated_stream(ly);
        return;
    }
    for (k = 0; k < K; k++) {
        uint32_t o = (uint32_t)k * ly->n;
        etp_vec_t tin = l == 0 ? vec(onehot(k, label), ETP_N_OUT, 8)
                               : vec(NET->layers[l - 1].st + (uint32_t)k * ly->n_in, ly->n_in, 8);
        layer_row(ly, 1, ly->vt + o, ly->st + o, ly->st + o, ly->vpre_t != NULL ? ly->vpre_t + o : NULL, &tin);
        etp_trace_step_q(ly->trt + o, ly->st + o, ly->n, ETP_LAMBDA_Q, ETP_FT);
    }
}

/* The label trace, and the target set's step count, after a step of the target set. */
static void target_end(uint16_t label)
{
    uint16_t k;
    if (NET->tsteps != NULL) {
        *NET->tsteps += 1;
    }
    for (k = 0; k < K; k++) {
        etp_trace_step_q(NET->trl + (uint32_t)k * ETP_N_OUT, onehot(k, label), ETP_N_OUT, ETP_LAMBDA_Q, ETP_FT);
    }
}
#endif

/* forward_q: the data stream, and the target set when with_targets (never in a frozen-hidden
 * build). The previous spikes are kept in s_prev/st_prev (recurrent nets) for the recurrent
 * gradients. */
static void forward(const etp_x_t *x, int with_targets, uint16_t label)
{
    uint16_t l;
    uint32_t i;
    for (l = 0; l < ETP_N_LAYERS; l++) {
        const etp_layer_t *ly = &NET->layers[l];
        etp_vec_t in = l == 0 ? vec(x, ETP_N_IN, ETP_X_BITS) : vec(NET->layers[l - 1].s, ly->n_in, 8);
        if (ly->s_prev != NULL) {
            for (i = 0; i < ly->n; i++) {
                ly->s_prev[i] = ly->s[i];
            }
        }
        layer_row(ly, 0, ly->v, ly->s, ly->s, ly->vpre, &in);
        etp_trace_step_q(ly->tr, ly->s, ly->n, ETP_LAMBDA_Q, ETP_FT);
#if !ETP_FROZEN_HIDDEN
        if (with_targets) {
            target_layer(l, label);
        }
#endif
    }
#if !ETP_FROZEN_HIDDEN
    if (with_targets) {
        target_end(label);
    }
#else
    (void)with_targets;
    (void)label;
#endif
    etp_readout_step_q(NET->u, NET->layers[ETP_N_LAYERS - 1].s, NET->params[READOUT].w, ETP_N_OUT,
                       NET->layers[ETP_N_LAYERS - 1].n, ETP_BETA_Q, NET->nz_idx_a, NET->nz_val_a);
    *NET->steps += 1;
}

/* gradients_q's local errors: delta (and delta_t from layer 1 on) of every hidden layer,
 * err of the readout. The soft targets compare label row and every row of the target
 * traces one layer below (the label trace for layer 0). */
static void local_errors(uint16_t label, int train_all)
{
#if !ETP_FROZEN_HIDDEN
    uint16_t l;
    for (l = 0; train_all && l < ETP_N_LAYERS; l++) {
        const etp_layer_t *ly = &NET->layers[l];
        const int16_t *p = l == 0 ? NET->trl : NET->layers[l - 1].trt;
        uint16_t width = l == 0 ? ETP_N_OUT : NET->layers[l - 1].n;
        const int16_t *p_row = p + (uint32_t)(ETP_TARGETS_CLASSES ? label : 0) * width;
        etp_soft_targets_q(p_row, p, K, width, ETP_FT, NET->sm_in, NET->sm_out, NET->ysoft);
        etp_contrastive_grads_q(ly->tr, ly->trt, NET->ysoft, K, ly->n, ETP_FT, 1, ly->vpre, ly->vpre_t, ETP_VTH_Q,
                                NET->sm_in, NET->sm_out, NET->dz, ly->delta, ly->delta_t);
    }
#else
    (void)train_all;
#endif
    etp_readout_error_q(NET->u, ETP_N_OUT, label, ETP_FO, 1, NET->sm_in, NET->sm_out, NET->err);
}

/* The presynaptic factor of a gradient term: the layer input (W) or the previous spikes
 * (R), of the data row (k < 0) or of target row k. */
static etp_vec_t term_input(const etp_param_t *p, const etp_layer_t *ly, int k)
{
    if (p->kind == ETP_PARAM_R) {
        return k < 0 ? vec(ly->s_prev, ly->n, 8) : vec(ly->st_prev + (uint32_t)k * ly->n, ly->n, 8);
    }
    if (p->layer == 0) {
        return vec(frame, ETP_N_IN, ETP_X_BITS);
    }
    return k < 0 ? vec(NET->layers[p->layer - 1].s, ly->n_in, 8)
                 : vec(NET->layers[p->layer - 1].st + (uint32_t)k * ly->n_in, ly->n_in, 8);
}

/* gradients_q's factors of a tensor: the readout's one term err tr^T; a hidden tensor's data
 * term delta in^T (W) or delta s_prev^T (R), then (layer >= 1) one term per target row. */
static uint16_t grad_count(const etp_param_t *p)
{
    if (p->kind == ETP_PARAM_OUT) {
        return 1;
    }
    return NET->layers[p->layer].delta_t != NULL ? (uint16_t)(1 + K) : 1;
}

static void grad_term(const etp_param_t *p, uint16_t t, etp_term_t *out)
{
    const etp_layer_t *ly;
    if (p->kind == ETP_PARAM_OUT) {
        const etp_layer_t *last = &NET->layers[ETP_N_LAYERS - 1];
        out->d = NET->err;
        out->dbits = 32;
        out->x = vec(last->tr, last->n, 16);
        return;
    }
    ly = &NET->layers[p->layer];
    out->dbits = 64;
    out->d = t == 0 ? ly->delta : ly->delta_t + (uint32_t)(t - 1) * ly->n;
    out->x = term_input(p, ly, (int)t - 1);
}

static const etp_grad_t gradient = {grad_count, grad_term};

/* Every opt_cfg field within its range (edgetp.fixed.contract.OPT_CFG_RANGES). */
static int opt_cfg_valid(const int32_t *c)
{
    static const int32_t lo[ETP_CFG_COUNT] = {ETP_CFG_KIND_MIN, ETP_CFG_LR_M_MIN, ETP_CFG_LR_E_MIN,
                                              ETP_CFG_BETA_SHIFT_MIN, ETP_CFG_TRAIN_ALL_MIN, ETP_CFG_CLIP_MIN};
    static const int32_t hi[ETP_CFG_COUNT] = {ETP_CFG_KIND_MAX, ETP_CFG_LR_M_MAX, ETP_CFG_LR_E_MAX,
                                              ETP_CFG_BETA_SHIFT_MAX, ETP_TRAIN_ALL_LIMIT, ETP_CFG_CLIP_MAX};
    int f;
    for (f = 0; f < ETP_CFG_COUNT; f++) {
        if (c[f] < lo[f] || c[f] > hi[f]) {
            return 0;
        }
    }
    return 1;
}

/* The normalised rules' statistics stay in [0, ETP_STAT_MAX] (update_q saturates them there); others,
 * written by a host (WRITE_TENSOR), would overflow in ms_ema: refused like an invalid opt_cfg. */
static int stats_valid(void)
{
    uint16_t n, k;
    uint32_t hi = 0;
    for (n = 0; n < ETP_N_PARAMS; n++) {   /* every statistic below 2^62 (the usual case): the high words suffice */
        const etp_param_t *p = &NET->params[n];
        for (k = 0; k < p->rows; k++) {
            hi |= (uint32_t)((uint64_t)p->rr[k] >> 32);
        }
        for (k = 0; k < p->cols; k++) {
            hi |= (uint32_t)((uint64_t)p->cc[k] >> 32);
        }
    }
    if (hi < (1u << 30)) {
        return 1;
    }
    for (n = 0; n < ETP_N_PARAMS; n++) {
        const etp_param_t *p = &NET->params[n];
        for (k = 0; k < p->rows; k++) {
            if (p->rr[k] < 0 || p->rr[k] > ETP_STAT_MAX) {
                return 0;
            }
        }
        for (k = 0; k < p->cols; k++) {
            if (p->cc[k] < 0 || p->cc[k] > ETP_STAT_MAX) {
                return 0;
            }
        }
    }
    return 1;
}

#if ETP_UPDATE_EVERY < 1u
#error "ETP_UPDATE_EVERY must be >= 1 (DeviceConfig.update_every)"
#endif

/* train_step_q (its docstring is etp_api.h's): the step learns only when t % ETP_UPDATE_EVERY == 0,
 * t = *NET->steps, the steps since etp_reset_state before this one; the forward pass runs on every step. */
etp_status_t etp_train_step(const etp_x_t *x, uint16_t label)
{
    uint16_t n;
    int train_all, learn;
    if (x == NULL || label >= ETP_N_OUT || !opt_cfg_valid(NET->opt_cfg) || !stats_valid()) {
        return ETP_EBADARG;
    }
    train_all = NET->opt_cfg[ETP_CFG_TRAIN_ALL];
    learn = *NET->steps % ETP_UPDATE_EVERY == 0u;
    frame = x;
    forward(x, train_all, label);      /* readout only: the target set is not run (train_step_q) */
    if (!learn) {
        frame = NULL;
        return ETP_OK;
    }
    local_errors(label, train_all);
    for (n = 0; n < ETP_N_PARAMS; n++) {   /* update_q: trainable_names order */
        if (train_all || NET->params[n].kind == ETP_PARAM_OUT) {
            etp_update_q(&NET->params[n], &gradient, NET->opt_cfg, NET->rng);
        }
    }
    *NET->opt_steps += 1;
    frame = NULL;
    return ETP_OK;
}

etp_status_t etp_infer_step(const etp_x_t *x)
{
    if (x == NULL) {
        return ETP_EBADARG;
    }
    forward(x, 0, 0);
    return ETP_OK;
}

uint16_t etp_predict(void)
{
    uint16_t k, best = 0;
    for (k = 1; k < ETP_N_OUT; k++) {
        if (NET->u[k] > NET->u[best]) {
            best = k;
        }
    }
    return best;
}
