/*
 * etp_fe_stream.h - the integer frontend on an endless stream, the C twin of
 * edgetp/audio/frontend_q_stream.py (fe_stream_start / fe_stream_step_q / fe_stream_flush_q):
 * one 10 ms hop (ETP_FE_HOP int16 samples) in, the finished frames' features out, bit for bit.
 *
 *     etp_fe_stream_start(&fs);
 *     for each hop:  etp_fe_stream_step(&fs, pcm);              computes at most one frame
 *                    while (etp_fe_stream_next(&fs, feats)) ...   the frames it finished: 0 or 1,
 *                                                                 5 once (frames 0..4, when frame A + 8 is in)
 *     at the end:    etp_fe_stream_flush(&fs); while (etp_fe_stream_next(&fs, feats)) ...
 *
 * Frame t is normalised by the running maximum of frame t + A (ETP_FE_RUNNING_MAX = D,
 * ETP_FE_RUNNING_MAX_AHEAD = A, generated from the model's stream input stage) and its features
 * come out once frame t + A + 4 is in (delta's look-ahead). Fixed memory whatever the stream's
 * length: < 480 samples, the log-mel rows of the <= A + 1 frames waiting for their maximum, the last
 * 10 L rows delta reads, one frame's FFT scratch. No counter grows with the stream: every count is
 * bounded by the rings (or saturates), so a stream of any length (a day is 8.64 M frames) computes
 * what its first minutes do; only `frames` (the frames emitted, for the caller) is a free-running
 * uint32, read by nothing here (it wraps after 497 days).
 */
#ifndef ETP_FE_STREAM_H
#define ETP_FE_STREAM_H

#include <stdint.h>

#include "etp_frontend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Only a running-maximum input stage streams (ETP_FE_RUNNING_MAX = D > 0): the utterance's maximum
 * needs the utterance's end, so an export normalised by it has no stream (everything below is absent). */
#if ETP_FE_RUNNING_MAX

#define ETP_FES_WAIT (ETP_FE_RUNNING_MAX_AHEAD + 1)  /* log-mel rows: the frames waiting for m[t + A], the newest */
#define ETP_FES_L (ETP_FE_DELTA_WIDTH + 1)           /* L rows kept (delta reads 9; the flush's first one before) */
#define ETP_FES_H (ETP_FE_DELTA_WIDTH / 2)           /* delta's look-ahead: 4 frames */

typedef struct etp_fe_stream {
    etp_fe_work_t work;                           /* one frame's scratch */
    int16_t win[ETP_FE_N_FFT];                    /* the next frame's window so far */
    int16_t lm[ETP_FES_WAIT][ETP_FE_MELS];        /* ring: log-mels of frames whose L waits */
    int16_t L[ETP_FES_L][ETP_FE_MELS];            /* ring: L of the last frames */
    int32_t m;                                    /* the running maximum after the last frame */
    uint32_t frames;                              /* frames emitted (free-running, for the caller) */
    uint16_t fill;                                /* samples in win */
    uint8_t wait, wait_head;                      /* rows waiting in lm, the oldest's index */
    uint8_t l_pos;                                /* the next L row's index in L */
    uint8_t lag;                                  /* frames with L not yet emitted (<= 9) */
    uint8_t early;                                /* frames emitted, saturated at 4 (delta's start rows) */
    uint8_t hops;                                 /* hops taken, saturated at 8 (the flush needs 8) */
    uint8_t pads;                                 /* padded frames the flush still computes */
    uint8_t state;                                /* 0 streaming, 1 flushing, 2 ended */
} etp_fe_stream_t;

void etp_fe_stream_start(etp_fe_stream_t *fs);
/* One hop of ETP_FE_HOP samples. ETP_EBADARG (nothing taken) after the flush, with pcm NULL, or
 * while a finished frame has not been taken by etp_fe_stream_next. */
etp_status_t etp_fe_stream_step(etp_fe_stream_t *fs, const int16_t *pcm);
/* The stream's end (the clip's zero padding and end rows). ETP_EBADARG after fewer than 8 hops
 * (delta's edge rows read 9 frames) or twice. */
etp_status_t etp_fe_stream_flush(etp_fe_stream_t *fs);
/* 1 and the next finished frame's features (Q.ETP_FE_FEAT_F), or 0 when none is finished (after
 * the flush: the stream is over). */
int etp_fe_stream_next(etp_fe_stream_t *fs, int32_t feats[ETP_FE_FEATURES]);
/* 1 if a finished frame waits for etp_fe_stream_next (before the flush: then no hop is taken). */
int etp_fe_stream_ready(const etp_fe_stream_t *fs);
#endif /* ETP_FE_RUNNING_MAX */

#ifdef __cplusplus
}
#endif

#endif /* ETP_FE_STREAM_H */
