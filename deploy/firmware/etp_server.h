/* etp_server.h -- the device side of the protocol: sessions, sequence numbers, the
 * commands (deploy/protocol.py: Cmd) over the generated model API (etp_model.h).
 *
 * Build switch: ETP_PROTO_LOCKED=1 leaves out the debug commands (deploy/protocol.py:
 * DEBUG_CMDS: TENSOR_INFO, READ_TENSOR, WRITE_TENSOR, READ_STATE, SET_OPTIMIZER, READ_FE - the
 * commands that dump or write arbitrary state); they are then answered ETP_ST_UNKNOWN
 * like any unknown command. */
#ifndef ETP_SERVER_H
#define ETP_SERVER_H
#include <stdint.h>
#include "etp_link.h"

#ifndef ETP_PROTO_LOCKED
#define ETP_PROTO_LOCKED 0
#endif
/* ETP_FE_TRACE=1 (an unlocked build with the audio frontend and a payload of
 * PIPE_MAX_PAYLOAD: verify-c --frontend) keeps every frame's intermediates for READ_FE. */
#ifndef ETP_FE_TRACE
#define ETP_FE_TRACE 0
#endif

typedef struct {
    uint32_t n, last, min, max;
    uint64_t sum;
} etp_cost_t;

typedef struct {
    etp_link_t link;
    uint8_t session;
    uint16_t last_seq;
    uint32_t last_crc;
    uint16_t rsp_len;                 /* cached response to the last executed command */
    uint8_t rsp[ETP_MAX_FRAME];
    uint8_t pl[ETP_MAX_PAYLOAD];      /* response payload being built */
    etp_cost_t infer, train;
    uint32_t cost_overhead;           /* counter reading of an empty interval */
    uint32_t seq_errors, repeats, bad_cmds;
    uint32_t train_steps, infer_steps;
} etp_server_t;

void etp_server_init(etp_server_t *s);
void etp_server_feed(etp_server_t *s, uint8_t byte);
/* No byte came for ETP_IDLE_TIMEOUT_MS: the partial frame held is dropped. */
void etp_server_idle(etp_server_t *s);
/* 1 while the parser holds part of a frame (the port then waits at most ETP_IDLE_TIMEOUT_MS). */
int etp_server_pending(const etp_server_t *s);
#endif
