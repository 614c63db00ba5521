/*
 * etp_frontend.h - the integer audio frontend: 16 kHz int16 PCM -> the model's input frames
 * (101 x [40 log-mel, 40 delta, 40 delta-delta]), the C twin of edgetp/audio/frontend_q.py
 * (docs/fixed-point.md, section 9). No floating point, no allocation; one etp_fe_t holds
 * everything (its size is the frontend's RAM).
 *
 * Streaming use:
 *     etp_fe_reset(&fe);                       start of an utterance
 *     etp_fe_push(&fe, pcm, n);                any chunks, 16000 samples in all; every complete
 *                                              10 ms hop computes one frame's log-mel at once
 *     [etp_fe_pad_frame(&fe);]                 optional: one of the last frames (zero padding)
 *                                              per call, one hop's work each (a real-time
 *                                              device runs them in the 10 ms slots after the audio)
 *     etp_fe_finish(&fe);                      the last frames not padded yet; the utterance ends
 *     for t in 0..100: etp_fe_input(&fe, t, x);  then etp_train_step(x, label) / etp_infer_step(x);
 *                                              L = log1p(g S / max S) (g: the model's log gain, 1
 *                                              for the paper's) is computed in place for the rows
 *                                              frame t's delta reads that are not yet L
 * The maximum and the delta filters' four frames of look-ahead need the whole utterance:
 * that is why the 101 x 40 log-mel values are kept (ETP_FE_FRAMES * ETP_FE_MELS int16); the
 * maximum is kept as the frames come, so that the finish is only the padded frames.
 * A model with the causal running maximum (ETP_FE_RUNNING_MAX = D, generated) keeps
 * lmax = m[t] = max(max_b l, max(m[t-1] - D, LOG_ZERO)) and turns frame t - A into L when frame
 * t comes (A = ETP_FE_RUNNING_MAX_AHEAD: frame t is normalised by m[t + A]; the finish turns the
 * last A rows with the maximum carried on, etp_fe_ahead_m): only delta's look-ahead and A wait.
 * The per-frame kernels (etp_fe_frame, etp_fe_running_max, etp_fe_l_row, etp_fe_delta,
 * etp_fe_scale) are shared with the endless stream, etp_fe_stream.h.
 */
#ifndef ETP_FRONTEND_H
#define ETP_FRONTEND_H

#include <stdint.h>

#include "etp_model.h"
#include "etp_frontend_cfg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The scratch of one frame's computation (etp_fe_frame and its steps). */
typedef struct etp_fe_work {
    int32_t re[ETP_FE_HALF], im[ETP_FE_HALF];     /* FFT scratch */
    int64_t power[ETP_FE_N_BINS];                 /* last frame: |2 X[k]|^2 */
    int64_t mel[ETP_FE_MELS];                     /* last frame: mel energies */
} etp_fe_work_t;

struct etp_fe;
/* Called after every frame with its index (verification builds; NULL on a device). */
typedef void (*etp_fe_hook_t)(void *ctx, const struct etp_fe *fe, uint16_t t);

typedef struct etp_fe {
    int16_t win[ETP_FE_N_FFT];                    /* the current 480-sample window */
    int16_t lm[ETP_FE_FRAMES][ETP_FE_MELS];       /* log-mel Q.ETP_FE_LOG_F; rows < l_rows: L Q.ETP_FE_L_F */
    etp_fe_work_t work;                           /* FFT scratch, the last frame's power and mel */
    int32_t shift;                                /* last frame: block exponent s */
    int32_t lmax;                                 /* max log-mel so far (LOG_ZERO if all zero); the
                                                     running maximum m[t] with ETP_FE_RUNNING_MAX */
    uint32_t samples;                             /* samples pushed */
    uint16_t fill;                                /* samples in win */
    uint16_t frames;                              /* frames computed */
    uint16_t l_rows;                              /* rows of lm turned into L (after finish) */
    uint8_t done;                                 /* etp_fe_finish ran */
    etp_fe_hook_t hook;
    void *hook_ctx;
} etp_fe_t;

/* Start an utterance (keeps the hook). */
void etp_fe_reset(etp_fe_t *fe);
/* Append n samples; ETP_EBADARG (nothing taken) if the utterance would exceed ETP_FE_SAMPLES
 * samples, after etp_fe_finish, or if pcm is NULL with n > 0. */
etp_status_t etp_fe_push(etp_fe_t *fe, const int16_t *pcm, uint32_t n);
/* End the audio (the rest of the utterance is zeros) and compute the next frame: one hop's work.
 * ETP_EBADARG after finish or when all ETP_FE_FRAMES frames are computed. */
etp_status_t etp_fe_pad_frame(etp_fe_t *fe);
/* Zero-pad to ETP_FE_SAMPLES and compute the frames not computed yet. ETP_EBADARG if done. */
etp_status_t etp_fe_finish(etp_fe_t *fe);
/* After finish: L of frames < n in place (etp_fe_features does it for the rows it reads; this is
 * for reading them all, verify-c's READ_FE). ETP_EBADARG before finish or n > 101. */
etp_status_t etp_fe_l(etp_fe_t *fe, uint16_t n);
/* Features of frame t, Q.ETP_FE_FEAT_F: [L, delta, delta-delta]. ETP_EBADARG before finish or t >= 101. */
etp_status_t etp_fe_features(etp_fe_t *fe, uint16_t t, int32_t feats[ETP_FE_FEATURES]);
/* The model's input for frame t (the features through the model's fixed divisors, Q.ETP_X_FRAC). */
etp_status_t etp_fe_input(etp_fe_t *fe, uint16_t t, etp_x_t x[ETP_FE_FEATURES]);
/* The FFT of one frame: ETP_FE_HALF complex values in digit-reversed order (etp_fe_perm), in place. */
void etp_fe_fft(int32_t *re, int32_t *im);
/* One frame: 480 samples -> power, mel, log-mel (Q.ETP_FE_LOG_F); returns the block exponent. */
int32_t etp_fe_frame(etp_fe_work_t *fe, const int16_t *win, int16_t *logmel);
/* Its steps (etp_fe_frame calls them in this order; public for deploy/fe_profile.py):
 * window + block exponent + digit-reversed load (ETP_FE_SILENT for an all-zero frame),
 * etp_fe_fft, the real split + power, mel + log2. */
#define ETP_FE_SILENT INT32_MIN
int32_t etp_fe_load(etp_fe_work_t *fe, const int16_t *win);
void etp_fe_power(etp_fe_work_t *fe);
void etp_fe_mel_log(etp_fe_work_t *fe, int32_t s, int16_t *logmel);

/* The frame-by-frame steps after the log-mel (frontend_q_kernels' names): */
#if ETP_FE_RUNNING_MAX
/* running_max_q: the maximum after a frame, from the one before (m - D floored at LOG_ZERO, then the peak). */
int32_t etp_fe_running_max(const int16_t *logmel, int32_t m);
/* ahead_m: the maximum k >= 1 frames past the last frame (m_last), as silent frames would carry it. */
int32_t etp_fe_ahead_m(int32_t m_last, int32_t k);
#endif
/* l_frame: L = ln(1 + 2^(l - m + C)) of one frame's bands, in place (log-mel in, L Q.ETP_FE_L_F out). */
void etp_fe_l_row(int16_t *row, int32_t m);
/* delta_frame: features of the frame whose L row is lrow, from the 9 L rows delta reads with
 * coefficient row r. */
void etp_fe_delta(const int16_t *const rows[ETP_FE_DELTA_WIDTH], int32_t r, const int16_t *lrow,
                  int32_t feats[ETP_FE_FEATURES]);
/* normalise_q: the model's input of one frame's features (its fixed divisors, Q.ETP_X_FRAC). */
void etp_fe_scale(const int32_t feats[ETP_FE_FEATURES], etp_x_t x[ETP_FE_FEATURES]);

#ifdef __cplusplus
}
#endif

#endif /* ETP_FRONTEND_H */
