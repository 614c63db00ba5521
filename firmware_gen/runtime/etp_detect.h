/*
 * etp_detect.h - the keyword detector on a stream, the C twin of edgetp/stream/detector.py's
 * step_q (one name, one contract: step_q <-> etp_det_step; docs/detect.md).
 *
 * Per frame it reads the readout increments d_t = W_L s_t (the network's readout cleared
 * before each frame), keeps the window sums S_t over the last ETP_DET_WINDOW frames (moved by
 * the new row minus the oldest: no drift), takes the top class k (the first on ties) and its
 * margin over the best other class, and reports (t, k, margin) when k is a keyword, the margin
 * reaches k's threshold, no report happened in the last ETP_DET_REFRACTORY frames and k is not
 * latched (a reported class stays latched while it stays the top class). int32 state only:
 * |d| <= row bound, so |S| <= W * bound and a margin <= 2 W * bound < 2^31, checked by
 * DetectorSpec.quantized when the constants (etp_det_cfg.h, generated) are made.
 */
#ifndef ETP_DETECT_H
#define ETP_DETECT_H

#include <stdint.h>

#include "etp_det_cfg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* DetState's fields, in its order: the ring of the last W increments (row pos is the oldest),
 * frames seen, frames of suppression left, the latched class (-1: none), the window sums. */
typedef struct {
    int32_t buf[ETP_DET_WINDOW][ETP_DET_CLASSES];
    uint32_t pos;
    uint32_t t;
    int32_t hold;
    int32_t latch;
    int32_t sums[ETP_DET_CLASSES];
} etp_det_t;

/* A report: frame, class, margin (readout units * 2^readout bits). */
typedef struct {
    uint32_t frame;
    int32_t cls;
    int32_t margin;
} etp_det_report_t;

/* init_state: everything zero, no latch. */
void etp_det_init(etp_det_t *s);

/* step_q: one frame's increments d (ETP_DET_CLASSES, each within the row bound) -> 1 and *out
 * filled on a report, else 0; int32 arithmetic only (the window sums move by the new row minus
 * the oldest). Equal to step_q on every state, every step (tests/test_detect_c.py). */
int etp_det_step(etp_det_t *s, const int32_t *d, etp_det_report_t *out);

#ifdef __cplusplus
}
#endif

#endif /* ETP_DETECT_H */
