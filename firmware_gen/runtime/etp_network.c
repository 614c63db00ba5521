/*
 * etp_network.c - C twin of edgetp/fixed/network_q.py for batch 1, and the public API.
 *
 * etp_train_step = train_step_q: forward pass of the data stream and of the target set
 * (forward_q), every layer's local error and one optimizer step per trainable tensor
 * (gradients_q + update_q); etp_infer_step = infer_step_q. State lives in the arrays of
 * the generated etp_model.c, reached through etp_net (etp_internal.h).
 */
#include <stddef.h>

#include "etp_kernels.h"
#include "etp_primitives.h"
#include "etp_update.h"

#define NET (&etp_net)
#define K ETP_N_TARGETS

static const etp_x_t *frame;   /* the frame of the running etp_train_step */

static etp_vec_t vec(const void *p, uint16_t n, uint8_t bits)
{
    etp_vec_t v;
    v.p = p;
    v.n = n;
    v.bits = bits;
    return v;
}

/* Row k of the target set's one-hot input (target_inputs_q): class k for "classes", the label for "batch". */
static const int8_t *onehot(uint16_t k, uint16_t label)
{
    uint16_t c;
    for (c = 0; c < ETP_N_OUT; c++) {
        NET->onehot[c] = (int8_t)(c == (ETP_TARGETS_CLASSES ? k : label));
    }
    return NET->onehot;
}

/* network_q._layer for one row: data stream (W, R) or target stream (S, S_rec on layer 0). */
static void layer_row(const etp_layer_t *ly, int target, int32_t *v, int8_t *s, const int8_t *s_prev,
                      int32_t *vpre, const etp_vec_t *in)
{
    int prop = target && ly->S != NULL;
    etp_vec_t sp = vec(s_prev, ly->n, 8);
    etp_lif_step_q(v, s, vpre, ly->n, in, prop ? ly->S : ly->W, target ? ly->sh_xt : ly->sh_x, &sp,
                   prop ? ly->S_rec : ly->R, target ? ly->sh_rt : ly->sh_r, ETP_ALPHA_Q, ETP_VTH_Q, ETP_HARD_RESET,
                   NET->nz_idx_a, NET->nz_val_a, NET->nz_idx_b, NET->nz_val_b);
}

/* forward_q: the data stream, and the target set when with_targets. The previous spikes
 * are kept in s_prev/st_prev (recurrent nets) for the recurrent gradients. */
static void forward(const etp_x_t *x, int with_targets, uint16_t label)
{
    uint16_t l, k;
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
        if (!with_targets) {
            continue;
        }
        if (ly->st_prev != NULL) {
            for (i = 0; i < (uint32_t)K * ly->n; i++) {
                ly->st_prev[i] = ly->st[i];
            }
        }
        for (k = 0; k < K; k++) {
            uint32_t o = (uint32_t)k * ly->n;
            etp_vec_t tin = l == 0 ? vec(onehot(k, label), ETP_N_OUT, 8)
                                   : vec(NET->layers[l - 1].st + (uint32_t)k * ly->n_in, ly->n_in, 8);
            layer_row(ly, 1, ly->vt + o, ly->st + o, ly->st + o, ly->vpre_t != NULL ? ly->vpre_t + o : NULL, &tin);
            etp_trace_step_q(ly->trt + o, ly->st + o, ly->n, ETP_LAMBDA_Q, ETP_FT);
        }
    }
    if (with_targets) {
        for (k = 0; k < K; k++) {
            etp_trace_step_q(NET->trl + (uint32_t)k * ETP_N_OUT, onehot(k, label), ETP_N_OUT, ETP_LAMBDA_Q, ETP_FT);
        }
    }
    etp_readout_step_q(NET->u, NET->layers[ETP_N_LAYERS - 1].s, NET->params[ETP_N_LAYERS].w, ETP_N_OUT,
                       NET->layers[ETP_N_LAYERS - 1].n, ETP_BETA_Q, NET->nz_idx_a, NET->nz_val_a);
    *NET->steps += 1;
}

/* gradients_q's local errors: delta (and delta_t from layer 1 on) of every hidden layer,
 * err of the readout. The soft targets compare label row and every row of the target
 * traces one layer below (the label trace for layer 0). */
static void local_errors(uint16_t label, int train_all)
{
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

/* Row i of a tensor's raw gradient (gradients_q): the data term, then (layer >= 1) the
 * target rows in order, accumulated with outer_acc_q's saturation. */
static int grad_row(const etp_param_t *p, uint16_t i, int64_t *g)
{
    const etp_layer_t *ly;
    int any, k;
    uint16_t j;
    etp_vec_t in;
    for (j = 0; j < p->cols; j++) {
        g[j] = 0;
    }
    if (p->kind == ETP_PARAM_OUT) {
        const etp_layer_t *last = &NET->layers[ETP_N_LAYERS - 1];
        in = vec(last->tr, last->n, 16);
        etp_outer_acc_q(g, NET->err[i], &in);
        return NET->err[i] != 0;
    }
    ly = &NET->layers[p->layer];
    in = term_input(p, ly, -1);
    etp_outer_acc_q(g, ly->delta[i], &in);
    any = ly->delta[i] != 0;
    if (ly->delta_t != NULL) {
        for (k = 0; k < K; k++) {
            int64_t d = ly->delta_t[(uint32_t)k * ly->n + i];
            in = term_input(p, ly, k);
            etp_outer_acc_q(g, d, &in);
            any |= d != 0;
        }
    }
    return any;
}

static int64_t abs_max_i64(const int64_t *a, uint32_t n)
{
    int64_t m = 0;
    uint32_t i;
    for (i = 0; i < n; i++) {
        int64_t v = a[i] >= 0 ? a[i] : -a[i];
        m = v > m ? v : m;
    }
    return m;
}

static int64_t abs_max_vec32(const int32_t *a, uint16_t n)
{
    int64_t m = 0;
    uint16_t i;
    for (i = 0; i < n; i++) {
        int64_t v = a[i] >= 0 ? (int64_t)a[i] : -(int64_t)a[i];
        m = v > m ? v : m;
    }
    return m;
}

static int64_t abs_max_vec(const etp_vec_t *x)
{
    int64_t m = 0;
    uint16_t j;
    for (j = 0; j < x->n; j++) {
        int64_t v = x->bits == 8 ? ((const int8_t *)x->p)[j] : ((const int16_t *)x->p)[j];
        v = v >= 0 ? v : -v;
        m = v > m ? v : m;
    }
    return m;
}

/* max |g| of a tensor. When its gradient is one outer product d x^T (the readout, and
 * layer 0, whose target stream does not learn), |g_ij| = min(|d_i| |x_j|, ETP_GRAD_LIMIT),
 * so the maximum is min(max |d| max |x|, ETP_GRAD_LIMIT) (|d| <= 2^47, |x| < 2^16: no
 * overflow); otherwise every row is read. */
static int64_t grad_abs_max(const etp_param_t *p, int64_t *g)
{
    int64_t dmax, m;
    etp_vec_t in;
    if (p->kind == ETP_PARAM_OUT) {
        const etp_layer_t *last = &NET->layers[ETP_N_LAYERS - 1];
        in = vec(last->tr, last->n, 16);
        dmax = abs_max_vec32(NET->err, ETP_N_OUT);
    } else if (NET->layers[p->layer].delta_t == NULL) {
        const etp_layer_t *ly = &NET->layers[p->layer];
        in = term_input(p, ly, -1);
        dmax = abs_max_i64(ly->delta, ly->n);
    } else {
        return etp_grad_abs_max_rows(p, grad_row, g);
    }
    m = dmax * abs_max_vec(&in);
    return m < ETP_GRAD_LIMIT ? m : ETP_GRAD_LIMIT;
}

static const etp_grad_t gradient = {grad_row, grad_abs_max};

static int opt_cfg_valid(const int32_t *c)
{
    return c[0] >= 0 && c[0] < ETP_OPT_COUNT && c[1] >= 0 && c[1] <= 255 && c[2] >= -64 &&
           c[2] <= 127 && c[3] >= 0 && c[3] <= 62 && (c[4] == 0 || c[4] == 1) && c[5] >= -1 && c[5] <= 62;
}

/* The factored statistics stay in [0, ETP_STAT_MAX] (update_q saturates them there); others,
 * written by a host (WRITE_TENSOR), would overflow in ms_ema: refused like an invalid opt_cfg. */
static int stats_valid(void)
{
    uint16_t n, k;
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

etp_status_t etp_train_step(const etp_x_t *x, uint16_t label)
{
    uint16_t n;
    int train_all;
    if (x == NULL || label >= ETP_N_OUT || !opt_cfg_valid(NET->opt_cfg) || !stats_valid()) {
        return ETP_EBADARG;
    }
    train_all = NET->opt_cfg[4];
    frame = x;
    forward(x, 1, label);
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
