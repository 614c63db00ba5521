/*
 * etp_detect.c - etp_det_step, the C twin of edgetp/stream/detector.py's step_q (etp_detect.h).
 * Integer arithmetic only; every branch follows _decide's order so that both twins agree on
 * every state, every frame.
 */
#include "etp_detect.h"

#include <string.h>

static const int32_t det_threshold[ETP_DET_CLASSES] = ETP_DET_THRESHOLD;
static const uint8_t det_keyword[ETP_DET_CLASSES] = ETP_DET_KEYWORD;

void etp_det_init(etp_det_t *s) {
    memset(s, 0, sizeof *s);
    s->latch = -1;
}

int etp_det_step(etp_det_t *s, const int32_t *d, etp_det_report_t *out) {
    int32_t *row = s->buf[s->pos];
    uint32_t k = 0;
    for (uint32_t j = 0; j < ETP_DET_CLASSES; j++) {
        s->sums[j] = s->sums[j] - row[j] + d[j]; /* |sums| <= W * row bound: no wrap */
        row[j] = d[j];
        if (s->sums[j] > s->sums[k]) k = j; /* strictly greater: the first on ties (argmax) */
    }
    int32_t rest = 0, have = 0; /* the best other class (0 when there is none) */
    for (uint32_t j = 0; j < ETP_DET_CLASSES; j++)
        if (j != k && (!have || s->sums[j] > rest)) rest = s->sums[j], have = 1;
    int32_t margin = s->sums[k] - rest;
    int on = det_keyword[k] == 1u && margin >= det_threshold[k];
    int32_t latch = (int32_t)k == s->latch ? s->latch : -1; /* re-armed once another class is on top */
    uint32_t t = s->t;
    int fired = 0;
    if (s->hold > 0) {
        s->hold -= 1;
    } else if (on && latch < 0) {
        s->hold = ETP_DET_REFRACTORY;
        latch = (int32_t)k;
        out->frame = t, out->cls = (int32_t)k, out->margin = margin;
        fired = 1;
    } else {
        s->hold = 0;
    }
    s->latch = latch;
    s->pos = (s->pos + 1u) % ETP_DET_WINDOW;
    s->t = t + 1u;
    return fired;
}
