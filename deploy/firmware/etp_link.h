/* etp_link.h -- frame parser and encoder of the serial protocol (twin of
 * deploy/protocol.py: FrameParser, encode). Layout and constants: etp_proto.h. */
#ifndef ETP_LINK_H
#define ETP_LINK_H
#include <stdint.h>
#include "etp_proto.h"

typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    uint32_t crc;            /* frame CRC as received (identifies a repeat) */
    const uint8_t *payload;
} etp_frame_t;

typedef struct {
    uint8_t buf[ETP_MAX_FRAME];
    uint16_t n;
    uint32_t hdr_errors, crc_errors, skipped, frames, idle_drops;
} etp_link_t;

typedef void (*etp_frame_cb)(void *ctx, const etp_frame_t *f);

uint8_t etp_crc8(const uint8_t *p, uint32_t n);
void etp_link_init(etp_link_t *l);
/* Feed one received byte; calls cb for every complete, valid frame (the frame's
 * payload pointer is valid only during the call). */
void etp_link_feed(etp_link_t *l, uint8_t byte, etp_frame_cb cb, void *ctx);
/* The line was silent for ETP_IDLE_TIMEOUT_MS: calls cb for the frames complete in the
 * buffer and drops the rest (each partial frame dropped counts in idle_drops). */
void etp_link_idle(etp_link_t *l, etp_frame_cb cb, void *ctx);
/* Write a frame into out (ETP_MAX_FRAME bytes); returns its length (0 if len too big). */
uint16_t etp_link_encode(uint8_t *out, uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len);
#endif
