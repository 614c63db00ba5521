/*
 * etp_internal.h - how the runtime sees an exported model (not part of the public API).
 *
 * The generated etp_model.c defines every array and one constant descriptor, etp_net,
 * that points at them; the runtime (etp_network.c, etp_update.c, etp_kernels.c) only
 * ever reaches the model through etp_net. Array shapes and element formats are those
 * of firmware_gen/layout.py; all matrices are row-major.
 */
#ifndef ETP_INTERNAL_H
#define ETP_INTERNAL_H

#include "etp_model.h"

/* a transposed R's columns on word boundaries (the Cortex-M4 reads eight rows with one LDRD) */
#if defined(__GNUC__)
#define ETP_ALIGN4 __attribute__((aligned(4)))
#else
#define ETP_ALIGN4
#endif
/* where the code's cost depends on the compiler's inlining (issue 28's measured choices), said once here */
#if defined(__GNUC__)
#define ETP_NOINLINE __attribute__((noinline))
#define ETP_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ETP_NOINLINE
#define ETP_ALWAYS_INLINE inline
#endif

#ifndef ETP_ROW_SHIFTS          /* generated (1) only for a model with row scales (QModel.fw_rows) */
#define ETP_ROW_SHIFTS 0
#endif

/* One hidden layer l: both streams' state and the scratch its learning needs. */
typedef struct {
    uint16_t n_in;               /* inputs: ETP_N_IN for layer 0, else the width of layer l-1 */
    uint16_t n;                  /* neurons H_l */
    const etp_wh_t *W;           /* (n, n_in): trainable (RAM; the update writes it through etp_param_t),
                                    or constant in flash (ETP_FROZEN_HIDDEN) */
    const etp_wh_t *R;           /* (n, n), the same; NULL if not recurrent */
    uint32_t r_stride;           /* 0: R row-major; else R stored transposed (frozen, layout.RCOL_ALIGN): the
                                    column of neuron j's spike at R + j r_stride */
    uint8_t w16;                 /* 1: W holds int8 values as int16, word-aligned rows (frozen layer 0 of an
                                    int8 build with int16 features, layout.wide_input); 0: etp_wh_t */
    const etp_wh_t *S;           /* target propagator (n, ETP_N_OUT): layer 0 only, else NULL (and with
                                    ETP_FROZEN_HIDDEN: no target set) */
    const etp_wh_t *S_rec;       /* (n, n): layer 0 of a recurrent net only, else NULL */
    int8_t sh_x, sh_r;           /* data stream: shifts of W x and R s to Q.ETP_FV (QModel.in_shift, rec_shift) */
    int8_t sh_xt, sh_rt;         /* target stream (S and S_rec on layer 0) */
#if ETP_ROW_SHIFTS
    const int8_t *sh_x_row;      /* (n) in flash: row i's own shift of W x (QModel.in_shifts), replacing sh_x;
                                    NULL: sh_x for every row */
#endif
    int32_t *v;                  /* (n) membrane Q.ETP_FV */
    int8_t *s;                   /* (n) spikes 0/1 */
    int16_t *tr;                 /* (n) traces Q.ETP_FT */
    int32_t *vt;                 /* (K, n) target set; NULL on layer 0 when its stream is tabulated; the
                                    target set's arrays and vpre, delta are NULL with ETP_FROZEN_HIDDEN */
    int8_t *st;                  /* (K, n) */
    int16_t *trt;                /* (K, n) */
    int8_t *s_prev, *st_prev;    /* spikes of the previous step (recurrent nets; else NULL) */
    int32_t *vpre;               /* (n) membrane before spike and reset, this step */
    int32_t *vpre_t;             /* (K, n); NULL on layer 0 (its target stream does not learn) */
    int64_t *delta;              /* (n) Q.ETP_DELTA_F */
    int64_t *delta_t;            /* (K, n); NULL on layer 0 */
} etp_layer_t;

/* The largest train_all this build accepts: a frozen-hidden build learns the readout only. */
#define ETP_TRAIN_ALL_LIMIT (ETP_FROZEN_HIDDEN ? 0 : ETP_CFG_TRAIN_ALL_MAX)

/* Which gradient a trainable tensor gets (network_q.gradients_q). */
enum { ETP_PARAM_W = 0, ETP_PARAM_R = 1, ETP_PARAM_OUT = 2 };

/* One trainable tensor, in QModel.trainable_names order (W0..WL, R0..R{L-1}); with ETP_FROZEN_HIDDEN
 * the readout W_L alone (layout.device_trainable). */
typedef struct {
    etp_w_t *w;                  /* (rows, cols) in RAM */
    const etp_w_t *w_init;       /* its initial values in flash */
    uint16_t rows, cols;
    int8_t fw;                   /* fractional bits of w */
    int8_t gfrac;                /* fractional bits of its raw gradient (network_q.grad_formats) */
    uint8_t kind;                /* ETP_PARAM_* */
    uint8_t layer;               /* hidden layer it belongs to (ETP_PARAM_OUT: ETP_N_LAYERS) */
    int64_t *rr, *cc;            /* optimizer statistics: row / column mean-square EMAs */
} etp_param_t;

typedef struct {
    const etp_layer_t *layers;   /* ETP_N_LAYERS */
    const etp_param_t *params;   /* ETP_N_PARAMS */
    int16_t *trl;                /* (K, ETP_N_OUT) label trace */
    int32_t *u;                  /* (ETP_N_OUT) readout, in the format of W_L */
    uint32_t *steps, *rng, *opt_steps;
    int32_t *opt_cfg;            /* indexed by ETP_CFG_* (kind, lr_m, lr_e, beta_shift, train_all, clip) */
    /* scratch of one step */
    int32_t *err, *dz, *ysoft;   /* readout error (O), contrastive dZ and soft targets (K): Q0.15 */
    int64_t *sm_in, *sm_out;     /* softmax in/out, max(K, O) */
    int8_t *onehot;              /* (O) target-stream input */
    uint16_t *nz_idx_a, *nz_idx_b;   /* nonzero entries of an input vector (etp_nonzero) */
    int16_t *nz_val_a, *nz_val_b;
    int32_t *dq, *xq, *qrow;     /* gradient factors (rows_max / K + 1; cols_max), one row of q (cols_max) */
    int64_t *rowsq, *colsq;      /* sums of q^2 over each row / column */
    int64_t *mcol;               /* Q.32 multipliers of the columns (cols_max) */
    int32_t *row_m, *row_s, *col_m, *col_s;   /* update multipliers and shifts */
    /* layer 0's class target stream as a constant (layout.target_stream_table), or all NULL */
    const uint8_t *tstream;      /* spikes, one bit each, ceil(H_0 / 8) bytes per frame */
    const uint32_t *tstream_off; /* (K) first frame of row k */
    const uint16_t *tstream_pre, *tstream_per;   /* (K) frames before its cycle, frames of the cycle (0: none) */
    const int32_t *tstream_v;    /* (R, H_0) membrane after the stored frames of each row that does not repeat */
    int32_t *vt0_resume;         /* (R, H_0) their membranes on the device (from the last stored frame on) */
    uint32_t *tsteps;            /* training steps since the reset */
    const etp_tensor_t *tensors;
    uint32_t n_tensors;
    const char *const *labels;   /* ETP_N_OUT class names */
} etp_net_t;

extern const etp_net_t etp_net;
extern const int32_t etp_exp2_lut[];     /* round(2^30 * 2^(-i/256)), i = 0..256 */
extern const uint16_t etp_state_tensors[];  /* ETP_N_STATE_TENSORS table indices zeroed by etp_reset_state */

#endif /* ETP_INTERNAL_H */
