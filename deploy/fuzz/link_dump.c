/* link_dump.c -- test driver: feeds stdin through the C frame parser and prints one
 * line per frame ("F type seq len payload...") and the error counters, for the
 * differential test against deploy/protocol.py's FrameParser (tests/test_deploy_fuzz.py).
 * Input escape: 0xFF 0x00 is the byte 0xFF, 0xFF 0x01 an idle timeout (etp_link_idle). */
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
        if (c == 0xFF) {
            c = getchar();
            if (c == 1) {
                etp_link_idle(&l, on_frame, 0);
                continue;
            }
            c = 0xFF;
        }
        etp_link_feed(&l, (uint8_t)c, on_frame, 0);
    }
    printf("E %u %u %u\n", (unsigned)l.hdr_errors, (unsigned)l.crc_errors, (unsigned)l.idle_drops);
    return 0;
}
