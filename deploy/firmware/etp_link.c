/* etp_link.c -- frame parser with resynchronisation and frame encoder.
 * The rules are those of deploy/protocol.py (FrameParser): a bad header (HCRC or
 * LEN > ETP_MAX_PAYLOAD) or a bad frame CRC drops the SYNC byte it started at and the
 * search for SYNC resumes at the next byte, so a damaged frame never hides the next.
 * After ETP_IDLE_TIMEOUT_MS of silence (etp_link_idle) no partial frame can complete:
 * the frames complete in the buffer are taken and the rest is dropped, so a truncated
 * frame never hides a complete one that follows. */
#include <string.h>
#include "etp_bytes.h"
#include "etp_link.h"

uint8_t etp_crc8(const uint8_t *p, uint32_t n) {
    uint8_t crc = 0;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (uint8_t)((crc & 0x80u) ? (uint32_t)(crc << 1) ^ 0x07u : (uint32_t)(crc << 1));
    }
    return crc;
}

void etp_link_init(etp_link_t *l) { memset(l, 0, sizeof *l); }

/* Drop k bytes, then everything up to the next possible SYNC0. */
static void drop(etp_link_t *l, uint16_t k) {
    while (k < l->n && l->buf[k] != ETP_SYNC0) k++;
    if (k > l->n) k = l->n;
    l->skipped += k;
    memmove(l->buf, l->buf + k, (size_t)(l->n - k));
    l->n = (uint16_t)(l->n - k);
}

/* Take every complete frame at the start of the buffer; stop at a partial one. */
static void parse(etp_link_t *l, etp_frame_cb cb, void *ctx) {
    for (;;) {
        if (l->n == 0) return;
        if (l->buf[0] != ETP_SYNC0) { drop(l, 1); continue; }
        if (l->n < 2) return;
        if (l->buf[1] != ETP_SYNC1) { drop(l, 1); continue; }
        if (l->n < ETP_HEADER_SIZE) return;
        uint16_t len = (uint16_t)etp_rd16(l->buf + 2);
        if (len > ETP_MAX_PAYLOAD || etp_crc8(l->buf + 2, 5) != l->buf[7]) {
            l->hdr_errors++;
            drop(l, 1);
            continue;
        }
        uint16_t total = (uint16_t)(ETP_HEADER_SIZE + len + ETP_CRC_SIZE);
        if (l->n < total) return;
        uint32_t crc = etp_rd32(l->buf + ETP_HEADER_SIZE + len);
        if (etp_crc32(0, l->buf + 2, (uint32_t)(ETP_HEADER_SIZE - 2 + len)) != crc) {
            l->crc_errors++;
            drop(l, 1);
            continue;
        }
        etp_frame_t f;
        f.type = l->buf[4];
        f.seq = (uint16_t)etp_rd16(l->buf + 5);
        f.len = len;
        f.crc = crc;
        f.payload = l->buf + ETP_HEADER_SIZE;
        l->frames++;
        cb(ctx, &f);
        memmove(l->buf, l->buf + total, (size_t)(l->n - total));
        l->n = (uint16_t)(l->n - total);
    }
}

void etp_link_feed(etp_link_t *l, uint8_t byte, etp_frame_cb cb, void *ctx) {
    if (l->n >= ETP_MAX_FRAME) drop(l, 1);          /* cannot happen: frames are bounded */
    l->buf[l->n++] = byte;
    parse(l, cb, ctx);
}

void etp_link_idle(etp_link_t *l, etp_frame_cb cb, void *ctx) {
    while (l->n) {
        l->idle_drops++;
        drop(l, 1);
        parse(l, cb, ctx);
    }
}

uint16_t etp_link_encode(uint8_t *out, uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len) {
    if (len > ETP_MAX_PAYLOAD) return 0;
    out[0] = ETP_SYNC0;
    out[1] = ETP_SYNC1;
    etp_wr16(out + 2, len);
    out[4] = type;
    etp_wr16(out + 5, seq);
    out[7] = etp_crc8(out + 2, 5);
    if (len && payload != out + ETP_HEADER_SIZE) memmove(out + ETP_HEADER_SIZE, payload, len);
    etp_wr32(out + ETP_HEADER_SIZE + len, etp_crc32(0, out + 2, (uint32_t)(ETP_HEADER_SIZE - 2 + len)));
    return (uint16_t)(ETP_HEADER_SIZE + len + ETP_CRC_SIZE);
}
