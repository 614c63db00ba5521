/*
 * etp_harness.c - host-only test driver: the C API behind a binary stdin/stdout protocol,
 * used by firmware_gen/harness.py (edgetp verify-c). Not part of a firmware.
 *
 * Every command is one byte followed by its arguments (little-endian); every reply
 * starts with one status byte (ETP_OK, ETP_EBADARG, 0xFF = unknown command).
 *   'M'                 -> tensor count u32, then per tensor: name length u8, name,
 *                          dtype u8, writable u8, count u32; then ETP_MODEL_HASH (64 bytes)
 *   'I' seed u32        -> etp_init
 *   'Z'                 -> etp_reset_state
 *   'F' x[ETP_N_IN]     -> etp_infer_step
 *   'T' label u16 x[..] -> etp_train_step
 *   'P'                 -> etp_predict: u16
 *   'D'                 -> etp_state_digest: u32
 *   'A'                 -> every tensor's bytes, in table order
 *   'L' lr_m u8 lr_e i16          -> etp_set_lr
 *   'O' kind u8 beta u8 train u8 clip i8 -> etp_set_optimizer
 *   'W' index u32 bytes           -> overwrite a writable tensor (EBADARG if read-only)
 *   'Q'                 -> exit
 * The host is little-endian (x86-64, AArch64), so tensor bytes are sent as stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etp_model.h"

static const uint8_t sizes[] = ETP_DTYPE_SIZES;

static void get(void *p, size_t n)
{
    if (n > 0 && fread(p, 1, n, stdin) != n) {
        exit(0); /* the host closed the pipe */
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
    uint8_t b = (uint8_t)s;
    put(&b, 1);
}

static size_t tensor_bytes(const etp_tensor_t *t)
{
    return (size_t)t->count * sizes[t->dtype];
}

static void meta(void)
{
    uint32_t i, n = etp_tensor_count();
    status(ETP_OK);
    put(&n, 4);
    for (i = 0; i < n; i++) {
        const etp_tensor_t *t = etp_tensor(i);
        uint8_t len = (uint8_t)strlen(t->name);
        put(&len, 1);
        put(t->name, len);
        put(&t->dtype, 1);
        put(&t->writable, 1);
        put(&t->count, 4);
    }
    put(ETP_MODEL_HASH, 64);
}

int main(void)
{
    etp_x_t x[ETP_N_IN];
    int c;
    if (etp_tensor(etp_tensor_count()) != NULL || sizeof(ETP_MODEL_HASH) != 65) {
        return 3;
    }
    while ((c = getchar()) != EOF) {
        switch (c) {
        case 'M':
            meta();
            break;
        case 'I': {
            uint32_t seed;
            get(&seed, 4);
            status(etp_init(seed));
            break;
        }
        case 'Z':
            etp_reset_state();
            status(ETP_OK);
            break;
        case 'F':
            get(x, sizeof x);
            status(etp_infer_step(x));
            break;
        case 'T': {
            uint16_t label;
            get(&label, 2);
            get(x, sizeof x);
            status(etp_train_step(x, label));
            break;
        }
        case 'P': {
            uint16_t k = etp_predict();
            status(ETP_OK);
            put(&k, 2);
            break;
        }
        case 'D': {
            uint32_t d = etp_state_digest();
            status(ETP_OK);
            put(&d, 4);
            break;
        }
        case 'A': {
            uint32_t i;
            status(ETP_OK);
            for (i = 0; i < etp_tensor_count(); i++) {
                put(etp_tensor(i)->data, tensor_bytes(etp_tensor(i)));
            }
            break;
        }
        case 'L': {
            uint8_t m;
            int16_t e;
            get(&m, 1);
            get(&e, 2);
            status(etp_set_lr(m, e));
            break;
        }
        case 'O': {
            uint8_t a[3];
            int8_t clip;
            get(a, 3);
            get(&clip, 1);
            status(etp_set_optimizer(a[0], a[1], a[2], clip));
            break;
        }
        case 'W': {
            uint32_t i;
            const etp_tensor_t *t;
            get(&i, 4);
            t = etp_tensor(i);
            if (t == NULL) {
                exit(4);
            }
            if (t->writable) {
                get(t->data, tensor_bytes(t));
                status(ETP_OK);
            } else {
                void *tmp = malloc(tensor_bytes(t));
                get(tmp, tensor_bytes(t));
                free(tmp);
                status(ETP_EBADARG);
            }
            break;
        }
        case 'Q':
            return 0;
        default: {
            uint8_t b = 0xFF;
            put(&b, 1);
            break;
        }
        }
        fflush(stdout);
    }
    return 0;
}
