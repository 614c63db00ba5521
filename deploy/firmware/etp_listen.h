/* etp_listen.h -- the always-listening loop of a device (issue 32), the twin of edgetp/stream/reference_q.py's
 * StreamQ: 16 kHz int16 PCM in any pieces -> per 10 ms hop the stream frontend (etp_fe_stream.h) -> per
 * finished frame the model's input (etp_fe_scale), the readout u cleared, one inference step (u is then the
 * frame's increment d = W_L s), the keyword detector (etp_det_step). The network starts from a zero state
 * once and is never reset. The application logic only: the STREAM command (etp_server.c) is its transport.
 *
 * Per frame it reports what a host compares with the reference: CRC-32s of the input x (little-endian,
 * ETP_X_BITS), of the increments d (int32 LE) and of the detector's scalars and window sums (t, pos, hold,
 * latch, sums: int32 LE), the report, and the counter cost of the frame's parts. */
#ifndef ETP_LISTEN_H
#define ETP_LISTEN_H
#include <stdint.h>

#if defined(ETP_HAS_FRONTEND) && defined(ETP_HAS_DETECT)
#include "etp_detect.h"
#include "etp_fe_stream.h"
#if ETP_FE_RUNNING_MAX
#define ETP_HAS_LISTEN 1

typedef uint32_t (*etp_clock_t)(void);

typedef struct {
    uint32_t x_crc, d_crc, det_crc;
    uint8_t fired;
    int16_t cls;                          /* the report's class (-1: none) */
    int32_t margin;
    uint32_t fe_cost;                     /* delta, delta-delta and the input scaling of this frame */
    uint32_t net_cost, det_cost;          /* the inference step, the detector step */
} etp_listen_frame_t;

typedef struct {
    etp_fe_stream_t fe;
    etp_det_t det;
    int16_t hop[ETP_FE_HOP];
    uint16_t fill;                        /* samples of the next hop so far */
    uint8_t open;
    int32_t *u;                           /* the readout (the "u" tensor) */
    etp_clock_t now;
    uint32_t overhead;                    /* the clock's reading of an empty interval */
} etp_listen_t;

/* A new stream: the network's state zeroed (etp_reset_state), the detector and the frontend started.
 * ETP_EBADARG if the model has no int32 readout "u" of ETP_DET_CLASSES. */
etp_status_t etp_listen_start(etp_listen_t *l, etp_clock_t now, uint32_t overhead);
/* Append n samples; each completed hop runs the frontend (its cost added to *hop_cost). ETP_EBADARG
 * (nothing taken) before start, after the end, or while a finished frame waits for etp_listen_frame
 * (etp_fe_stream_ready). */
etp_status_t etp_listen_push(etp_listen_t *l, const int16_t *pcm, uint32_t n, uint32_t *hop_cost);
/* The end of the stream (whole hops only: ETP_EBADARG with a partial hop held, or fewer than 8 hops). */
etp_status_t etp_listen_end(etp_listen_t *l);
/* 1 and the next finished frame run through the network and the detector, or 0 when none is finished;
 * < 0: the model's error. */
int etp_listen_frame(etp_listen_t *l, etp_listen_frame_t *out);
#endif
#endif
#endif
