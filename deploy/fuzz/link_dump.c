/* link_dump.c -- test driver: feeds stdin through the C frame parser and prints one
 * line per frame ("type seq len crc") and the error counters, for the differential
 * test against deploy/protocol.py's FrameParser (tests/test_deploy_fuzz.py). */
#include <stdio.h>
#include "etp_link.h"

static void on_frame(void *ctx, const etp_frame_t *f) {
    (void)ctx;
    printf("F %u %u %u", f->type, f->seq, f->len);
    for (uint16_t i = 0; i < f->len; i++) printf(" %u", f->payload[i]);
    printf("\n");
}

int main(void) {
    static etp_link_t l;
    int c;
    etp_link_init(&l);
    while ((c = getchar()) != EOF) {
        if (c == 0x100) break;
        etp_link_feed(&l, (uint8_t)c, on_frame, 0);
    }
    printf("E %u %u\n", (unsigned)l.hdr_errors, (unsigned)l.crc_errors);
    return 0;
}
