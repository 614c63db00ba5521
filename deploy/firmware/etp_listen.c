/* etp_listen.c -- see etp_listen.h. */
#include "etp_listen.h"

#ifdef ETP_HAS_LISTEN
#include <string.h>

#include "etp_api.h"
#include "etp_bytes.h"

static uint32_t crc_i32(uint32_t crc, int32_t v)
{
    uint8_t b[4];
    etp_wr32(b, (uint32_t)v);
    return etp_crc32(crc, b, 4u);
}

static uint32_t since(const etp_listen_t *l, uint32_t t0)
{
    uint32_t d = l->now() - t0;
    return d > l->overhead ? d - l->overhead : 0;
}

etp_status_t etp_listen_start(etp_listen_t *l, etp_clock_t now, uint32_t overhead)
{
    memset(l, 0, sizeof *l);
    const etp_tensor_t *u = etp_tensor_find("u", ETP_I32, ETP_DET_CLASSES);
    if (u == NULL) return ETP_EBADARG;
    l->u = (int32_t *)u->data;
    etp_reset_state();
    etp_det_init(&l->det);
    etp_fe_stream_start(&l->fe);
    l->now = now;
    l->overhead = overhead;
    l->open = 1;
    return ETP_OK;
}

etp_status_t etp_listen_push(etp_listen_t *l, const int16_t *pcm, uint32_t n, uint32_t *hop_cost)
{
    uint32_t i = 0;
    if (!l->open || (pcm == NULL && n > 0)) return ETP_EBADARG;
    if (n == 0) return ETP_OK;                             /* a command that only collects frames */
    if (l->fe.state || etp_fe_stream_ready(&l->fe)) return ETP_EBADARG;   /* take the finished frames first */
    while (i < n) {
        uint32_t room = (uint32_t)ETP_FE_HOP - l->fill, k = n - i < room ? n - i : room;
        memcpy(l->hop + l->fill, pcm + i, k * sizeof pcm[0]);
        l->fill = (uint16_t)(l->fill + k);
        i += k;
        if (l->fill == ETP_FE_HOP) {
            uint32_t t0 = l->now();
            etp_status_t st = etp_fe_stream_step(&l->fe, l->hop);
            if (hop_cost) *hop_cost += since(l, t0);
            if (st != ETP_OK) return st;
            l->fill = 0;
        }
    }
    return ETP_OK;
}

etp_status_t etp_listen_end(etp_listen_t *l)
{
    if (!l->open || l->fill) return ETP_EBADARG;
    return etp_fe_stream_flush(&l->fe);
}

int etp_listen_frame(etp_listen_t *l, etp_listen_frame_t *out)
{
    int32_t f[ETP_FE_FEATURES];
    etp_x_t x[ETP_FE_FEATURES];
    etp_det_report_t r = {0, -1, 0};
    uint32_t t0 = l->now(), crc = 0;
    if (!l->open || !etp_fe_stream_next(&l->fe, f)) return 0;
    etp_fe_scale(f, x);
    out->fe_cost = since(l, t0);
    memset(l->u, 0, ETP_DET_CLASSES * sizeof l->u[0]);   /* the step's readout is this frame's increment */
    t0 = l->now();
    etp_status_t st = etp_infer_step(x);
    out->net_cost = since(l, t0);
    if (st != ETP_OK) return -(int)st;
    t0 = l->now();
    out->fired = (uint8_t)etp_det_step(&l->det, l->u, &r);
    out->det_cost = since(l, t0);
    out->cls = (int16_t)r.cls;
    out->margin = r.margin;
    for (uint32_t j = 0; j < ETP_FE_FEATURES; j++) {          /* little-endian, as the host packs them */
        uint8_t b[2] = {(uint8_t)((uint16_t)x[j] & 0xFFu), (uint8_t)((uint16_t)x[j] >> 8)};
        crc = etp_crc32(crc, b, ETP_X_BITS / 8u);
    }
    out->x_crc = crc;
    crc = 0;
    for (uint32_t j = 0; j < ETP_DET_CLASSES; j++) crc = crc_i32(crc, l->u[j]);
    out->d_crc = crc;
    crc = crc_i32(crc_i32(crc_i32(crc_i32(0, (int32_t)l->det.t), (int32_t)l->det.pos), l->det.hold), l->det.latch);
    for (uint32_t j = 0; j < ETP_DET_CLASSES; j++) crc = crc_i32(crc, l->det.sums[j]);
    out->det_crc = crc;
    return 1;
}
#endif
