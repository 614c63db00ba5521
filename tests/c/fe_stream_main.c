/* tests/test_fe_stream_c.py's harness: int16 PCM hops on stdin -> per hop, the number of frames the stream
 * finished (u8) and their features (int32 x ETP_FE_FEATURES each); after EOF the flush's (u32 count + features). */
#include <stdio.h>

#include "etp_fe_stream.h"

static etp_fe_stream_t fs;

static unsigned drain(int32_t out[][ETP_FE_FEATURES], unsigned cap)
{
    unsigned n = 0;
    while (n < cap && etp_fe_stream_next(&fs, out[n])) n++;
    return n;
}

int main(void)
{
    static int32_t out[256][ETP_FE_FEATURES];
    int16_t pcm[ETP_FE_HOP];
    etp_fe_stream_start(&fs);
    while (fread(pcm, sizeof pcm[0], ETP_FE_HOP, stdin) == ETP_FE_HOP) {
        if (etp_fe_stream_step(&fs, pcm) != ETP_OK) return 2;
        unsigned char n = (unsigned char)drain(out, 255);
        fwrite(&n, 1, 1, stdout);
        fwrite(out, sizeof out[0], n, stdout);
    }
    if (etp_fe_stream_flush(&fs) != ETP_OK) return 3;
    unsigned total = 0, n;
    static int32_t all[4096][ETP_FE_FEATURES];
    while ((n = drain(out, 256)) > 0) {
        for (unsigned i = 0; i < n && total < 4096; i++, total++)
            for (unsigned j = 0; j < ETP_FE_FEATURES; j++) all[total][j] = out[i][j];
    }
    fwrite(&total, sizeof total, 1, stdout);
    fwrite(all, sizeof all[0], total, stdout);
    return 0;
}
