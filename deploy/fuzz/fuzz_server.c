/* fuzz_server.c -- libFuzzer target for the device side of the protocol: the frame
 * parser (etp_link.c) and the command server (etp_server.c) over a model API.
 *
 *   python -m deploy.fuzz [--runs N | --seconds S]   (builds with clang -fsanitize=fuzzer,address,undefined)
 *
 * Input byte 0 chooses the mode:
 *   even: the rest is a raw byte stream from the UART (finds parser bugs);
 *         (a byte 0xFF followed by 0x01 is an idle timeout: etp_server_idle);
 *   odd:  the rest is a list of commands [type, step, len, payload...] that the
 *         harness frames with valid CRCs, so the fuzzer reaches every command handler
 *         with arbitrary payloads and sequence numbers (a random CRC would never pass).
 *         step bits 0-1: SEQ increment (0 = a repeat .. 3 = a gap); bit 2: send only the
 *         first (step >> 3) bytes of the frame, then an idle timeout (a truncated frame).
 * Build variants (python -m deploy.fuzz --locked): ETP_PROTO_LOCKED 0 and 1, with SET_LR
 * whenever the model's API has etp_set_lr (the default model does).
 * Every byte the firmware sends back must parse as valid response frames. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "etp_link.h"
#include "etp_port.h"
#include "etp_server.h"

static etp_server_t server;
static etp_link_t check;     /* parses what the server sends */
static uint32_t out_frames;

static void on_out(void *ctx, const etp_frame_t *f) {
    (void)ctx;
    if (!(f->type & ETP_RESPONSE_BIT) || f->len == 0) abort();
    out_frames++;
}

void port_init(int argc, char **argv) { (void)argc; (void)argv; }
int port_getc(uint32_t idle_ms) { (void)idle_ms; return -1; }
void port_write(const uint8_t *p, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) etp_link_feed(&check, p[i], on_out, 0);
}
uint32_t port_counter_now(void) { return 0; }
uint8_t port_counter_kind(void) { return ETP_COUNTER_NONE; }
uint16_t port_counter_res(void) { return 1; }
void port_ram(uint32_t *a, uint32_t *b, uint32_t *c) { *a = *b = *c = 0; }
const char *port_board(void) { return "fuzz"; }
/* the weight store's flash (a model with etp_store.c): RAM, NOR semantics, erased at start */
#ifndef ETP_FLASH_SIZE
#define ETP_FLASH_SIZE 0u
#define ETP_FLASH_PAGE 1u
#define ETP_FLASH_PROG 1u
#endif
static uint8_t flash[ETP_FLASH_SIZE + 1u];
static int flash_ready;
uint32_t port_flash_size(void) { return ETP_FLASH_SIZE; }
int port_flash_read(uint32_t off, uint8_t *dst, uint32_t n) {
    if (!flash_ready) { memset(flash, 0xFF, sizeof flash); flash_ready = 1; }
    if (off > ETP_FLASH_SIZE || n > ETP_FLASH_SIZE - off) abort();      /* the store never asks that */
    memcpy(dst, flash + off, n);
    return 0;
}
int port_flash_erase(uint32_t off) {
    if (off % ETP_FLASH_PAGE || off + ETP_FLASH_PAGE > ETP_FLASH_SIZE) abort();
    memset(flash + off, 0xFF, ETP_FLASH_PAGE);
    return 0;
}
int port_flash_program(uint32_t off, const uint8_t *src, uint32_t n) {
    if (n != ETP_FLASH_PROG || off % n || off + n > ETP_FLASH_SIZE) abort();
    for (uint32_t i = 0; i < n; i++) flash[off + i] &= src[i];
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
#ifdef ETP_HAS_SET_LR
    const int set_lr = 1;
#else
    const int set_lr = 0;
#endif
    fprintf(stderr, "fuzz_server: build locked=%d set_lr=%d\n", ETP_PROTO_LOCKED, set_lr);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    etp_server_init(&server);
    etp_link_init(&check);
    out_frames = 0;
    if (size == 0) return 0;
    if (!(data[0] & 1)) {
        for (size_t i = 1; i < size; i++) {
            if (data[i] == 0xFFu && i + 1 < size && data[i + 1] == 1u) {
                etp_server_idle(&server);
                i++;
            } else {
                etp_server_feed(&server, data[i]);
            }
        }
    } else {
        uint8_t frame[ETP_MAX_FRAME];
        uint16_t seq = 0;
        size_t i = 1;
        while (i + 3 <= size) {
            uint8_t type = data[i], step = data[i + 1];
            seq = (uint16_t)(seq + (step & 3u));
            uint16_t len = data[i + 2];
            i += 3;
            if (len > size - i) len = (uint16_t)(size - i);
            uint16_t n = etp_link_encode(frame, type, seq, data + i, len);
            i += len;
            if (step & 4u) n = (uint16_t)(n < (step >> 3) ? n : (step >> 3));
            for (uint16_t k = 0; k < n; k++) etp_server_feed(&server, frame[k]);
            if (step & 4u) etp_server_idle(&server);
        }
    }
    etp_server_idle(&server);    /* the line falls silent: whatever is complete is answered */
    if (check.n != 0) abort();   /* a partial or invalid response frame */
    return 0;
}
