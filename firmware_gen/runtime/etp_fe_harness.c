/*
 * etp_fe_harness.c - host-only driver of the integer audio frontend for
 * firmware_gen/frontend_verify.py (edgetp verify-c --frontend). Not part of a firmware.
 *
 * Commands (one byte, then arguments, little-endian); replies:
 *   'R'                   -> etp_fe_reset;                 'S' status
 *   'P' n u32, n x i16    -> etp_fe_push;  a frame record per completed frame, then 'S' status
 *   'E'                   -> etp_fe_finish; frame records, 'S' status, lmax i32, L[101][40] i16
 *   'X' t u16             -> 'S' status, features[120] i32, input[120] etp_x_t
 *   'Q'                   -> exit
 * Frame record: 'f', t u16, shift i32, power[ETP_FE_N_BINS] i64, mel[40] i64, logmel[40] i16.
 */
#include <stdio.h>
#include <stdlib.h>

#include "etp_frontend.h"

static etp_fe_t fe;
static int16_t chunk[ETP_FE_SAMPLES];

static void get(void *p, size_t n)
{
    if (n > 0 && fread(p, 1, n, stdin) != n) {
        exit(0);
    }
}

static void put(const void *p, size_t n)
{
    if (n > 0 && fwrite(p, 1, n, stdout) != n) {
        exit(2);
    }
}

static void status(etp_status_t s)
{
    uint8_t b[2];
    b[0] = 'S';
    b[1] = (uint8_t)s;
    put(b, 2);
}

static void on_frame(void *ctx, const etp_fe_t *f, uint16_t t)
{
    uint8_t tag = 'f';
    (void)ctx;
    put(&tag, 1);
    put(&t, 2);
    put(&f->shift, 4);
    put(f->power, sizeof f->power);
    put(f->mel, sizeof f->mel);
    put(f->lm[t], sizeof f->lm[t]);
}

int main(void)
{
    int c;
    fe.hook = on_frame;
    fe.hook_ctx = NULL;
    etp_fe_reset(&fe);
    while ((c = getchar()) != EOF) {
        switch (c) {
        case 'R':
            etp_fe_reset(&fe);
            status(ETP_OK);
            break;
        case 'P': {
            uint32_t n;
            etp_status_t st;
            get(&n, 4);
            if (n > ETP_FE_SAMPLES) {
                return 4;
            }
            get(chunk, (size_t)n * 2);
            st = etp_fe_push(&fe, chunk, n);
            status(st);
            break;
        }
        case 'E': {
            etp_status_t st = etp_fe_finish(&fe);
            status(st);
            put(&fe.lmax, 4);
            put(fe.lm, sizeof fe.lm);
            break;
        }
        case 'X': {
            uint16_t t;
            int32_t feats[ETP_FE_FEATURES] = {0};
            etp_x_t x[ETP_FE_FEATURES] = {0};
            etp_status_t st;
            get(&t, 2);
            st = etp_fe_features(&fe, t, feats);
            if (st == ETP_OK) {
                st = etp_fe_input(&fe, t, x);
            }
            status(st);
            put(feats, sizeof feats);
            put(x, sizeof x);
            break;
        }
        case 'Q':
            fflush(stdout);
            return 0;
        default:
            return 5;
        }
        fflush(stdout);
    }
    return 0;
}
