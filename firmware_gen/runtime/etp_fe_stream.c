/*
 * etp_fe_stream.c - C twin of edgetp/audio/frontend_q_stream.py: the stream's bookkeeping only;
 * every computation is etp_frontend.c's (etp_fe_frame, etp_fe_running_max, etp_fe_ahead_m,
 * etp_fe_l_row, etp_fe_delta), so the stream and the one-utterance path are the same arithmetic.
 */
#include <stddef.h>
#include <string.h>

#include "etp_fe_stream.h"

#if ETP_FE_RUNNING_MAX
#if ETP_FE_RUNNING_MAX_AHEAD > 254 || ETP_FES_L > 255
#error "the stream's ring counters are uint8_t"
#endif

void etp_fe_stream_start(etp_fe_stream_t *fs)
{
    memset(fs, 0, sizeof *fs);
    fs->fill = ETP_FE_HALF;                        /* the centring pad: 240 zeros */
    fs->m = ETP_FE_LOG_ZERO;
}

/* L of the oldest waiting frame with normaliser m, onto the L ring (_l_row) */
static void fes_l(etp_fe_stream_t *fs, int32_t m)
{
    int16_t *dst = fs->L[fs->l_pos];
    memcpy(dst, fs->lm[fs->wait_head], sizeof fs->L[0]);
    etp_fe_l_row(dst, m);
    fs->wait_head = (uint8_t)((fs->wait_head + 1u) % ETP_FES_WAIT);
    fs->wait--;
    fs->l_pos = (uint8_t)((fs->l_pos + 1u) % ETP_FES_L);
    fs->lag++;
}

/* the next frame from the full window (_frame): log-mel, m[f]; then L of frame f - A, which m[f] normalises */
static void fes_frame(etp_fe_stream_t *fs)
{
    int16_t *row = fs->lm[(fs->wait_head + fs->wait) % ETP_FES_WAIT];
    etp_fe_frame(&fs->work, fs->win, row);
    fs->m = etp_fe_running_max(row, fs->m);
    fs->wait++;
    if (fs->wait > ETP_FE_RUNNING_MAX_AHEAD) fes_l(fs, fs->m);
    memmove(fs->win, fs->win + ETP_FE_HOP, (ETP_FE_N_FFT - ETP_FE_HOP) * sizeof fs->win[0]);
    fs->fill = ETP_FE_N_FFT - ETP_FE_HOP;
}

/* _emit's condition: the oldest frame not emitted has its delta rows (frame t of `lag` with L known:
 * t < 4 once 9 frames are, else once frame t + 4 is; after the end, every one) */
int etp_fe_stream_ready(const etp_fe_stream_t *fs)
{
    if (!fs->lag) return 0;
    if (fs->state == 2) return 1;
    if (fs->early < ETP_FES_H) return fs->early + fs->lag >= ETP_FE_DELTA_WIDTH;
    return fs->lag > ETP_FES_H;
}

/* _features of the oldest frame not emitted: delta_start / delta_row relative to it (o: first row - t) */
static void fes_emit(etp_fe_stream_t *fs, int32_t feats[ETP_FE_FEATURES])
{
    const int16_t *rows[ETP_FE_DELTA_WIDTH];
    int32_t o, r, j, lag = fs->lag, base = fs->l_pos + 2 * ETP_FES_L - lag;   /* base % L: frame t's row */
    if (fs->early < ETP_FES_H) {                   /* the clip's start rows */
        o = -(int32_t)fs->early;
        r = fs->early;
    } else if (fs->state == 2 && lag <= ETP_FES_H) {   /* the clip's end rows: k = lag - 1 frames after t */
        o = lag - ETP_FE_DELTA_WIDTH;
        r = ETP_FE_DELTA_WIDTH - lag;
    } else {
        o = -ETP_FES_H;
        r = ETP_FES_H;
    }
    for (j = 0; j < ETP_FE_DELTA_WIDTH; j++) rows[j] = fs->L[(base + o + j) % ETP_FES_L];
    etp_fe_delta(rows, r, fs->L[base % ETP_FES_L], feats);
    fs->lag--;
    if (fs->early < ETP_FES_H) fs->early++;
    fs->frames++;
}

etp_status_t etp_fe_stream_step(etp_fe_stream_t *fs, const int16_t *pcm)
{
    uint32_t i = 0;
    if (fs->state || pcm == NULL || etp_fe_stream_ready(fs)) return ETP_EBADARG;
    while (i < ETP_FE_HOP) {                       /* at most one window completes per hop */
        uint32_t n = ETP_FE_HOP - i, room = ETP_FE_N_FFT - fs->fill;
        if (n > room) n = room;
        memcpy(fs->win + fs->fill, pcm + i, n * sizeof pcm[0]);
        fs->fill = (uint16_t)(fs->fill + n);
        i += n;
        if (fs->fill == ETP_FE_N_FFT) fes_frame(fs);
    }
    if (fs->hops < ETP_FE_DELTA_WIDTH - 1) fs->hops++;
    return ETP_OK;
}

etp_status_t etp_fe_stream_flush(etp_fe_stream_t *fs)
{
    if (fs->state || fs->hops < ETP_FE_DELTA_WIDTH - 1) return ETP_EBADARG;   /* next() takes ready frames first */
    fs->state = 1;
    fs->pads = 2;                                  /* n = hops + 1 frames; hops - 1 are computed */
    return ETP_OK;
}

int etp_fe_stream_next(etp_fe_stream_t *fs, int32_t feats[ETP_FE_FEATURES])
{
    for (;;) {
        if (etp_fe_stream_ready(fs)) {
            fes_emit(fs, feats);
            return 1;
        }
        if (fs->state != 1) return 0;
        if (fs->pads) {                            /* the clip's zero padding */
            memset(fs->win + fs->fill, 0, (ETP_FE_N_FFT - fs->fill) * sizeof fs->win[0]);
            fs->pads--;
            fes_frame(fs);
        } else if (fs->wait) {                     /* _finish: the maximum carried on past the last frame */
            fes_l(fs, etp_fe_ahead_m(fs->m, ETP_FE_RUNNING_MAX_AHEAD + 1 - fs->wait));
        } else {
            fs->state = 2;                         /* the rest with the clip's end rows */
        }
    }
}
#endif /* ETP_FE_RUNNING_MAX */
