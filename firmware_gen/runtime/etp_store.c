/*
 * etp_store.c - the power-safe weight store (etp_store.h; layout: firmware_gen/store.py,
 * whose Python twin encode_slot/decode_slot/boot_select reads and writes the same bytes).
 *
 * Write order of a save into slot T (the one not holding the newest valid state):
 *   1. erase every page of T, its header page first: T is invalid from the first erase on;
 *   2. program the payload, one ETP_FLASH_PROG unit at a time;
 *   3. program the header, the unit holding the CRC last: only now is T valid;
 *   4. read T back and check it as the boot does.
 * The other slot is never touched, so a cut at any moment leaves it complete; T is either
 * invalid (erased, torn, no or partial header: wrong magic, hash or CRC) or complete.
 */
#include <stddef.h>

#include "etp_bytes.h"
#include "etp_internal.h"
#include "etp_store.h"

#if ETP_FLASH_PROG == 0 || (ETP_FLASH_PAGE % ETP_FLASH_PROG) != 0
#error "ETP_FLASH_PAGE must be a non-zero multiple of ETP_FLASH_PROG"
#endif
#if ETP_STORE_HEADER_SIZE_OFF != ETP_STORE_VERSION_OFF + 2u
#error "slot_check reads version and header size as one u32"
#endif

#define NET (&etp_net)
#define HDR_AREA (((ETP_STORE_HEADER_SIZE + ETP_FLASH_PROG - 1u) / ETP_FLASH_PROG) * ETP_FLASH_PROG)
#define SLOT_BYTES (((HDR_AREA + ETP_STORE_PAYLOAD + ETP_FLASH_PAGE - 1u) / ETP_FLASH_PAGE) * ETP_FLASH_PAGE)
#define CHUNK 32u                       /* bytes read from flash at a time */

static const uint16_t store_tensors[ETP_STORE_N_TENSORS] = ETP_STORE_TENSORS;
static const uint8_t model_hash[32] = ETP_STORE_MODEL_HASH;
static const uint8_t dtype_size[] = ETP_DTYPE_SIZES;
static etp_store_info_t info = {ETP_STORE_NO_SLOT, ETP_STORE_EMPTY, 0, 0, 0, 0, 0};
static uint8_t hdr[HDR_AREA];           /* a header being written or checked */
static uint8_t unit[ETP_FLASH_PROG];    /* one program unit being assembled */

/* The payload is the persistent tensors' elements as little-endian bytes, in order;
 * a sink takes it into a CRC and, when programming, into flash one unit at a time. */
typedef struct {
    uint32_t crc;
    uint32_t off;                       /* flash offset of unit[0] */
    uint32_t fill;
    int err;
} sink_t;

static void sink_flush(sink_t *s)
{
    if (s->fill == 0) {
        return;
    }
    while (s->fill < ETP_FLASH_PROG) {
        unit[s->fill++] = 0xFFu;        /* the erased value: the unit's tail stays as erased */
    }
    if (!s->err && port_flash_program(s->off, unit, ETP_FLASH_PROG) != 0) {
        s->err = 1;
    }
    info.programs++;
    s->off += ETP_FLASH_PROG;
    s->fill = 0;
}

/* Stream the payload: into the CRC only (program == 0) or also into flash at s->off. */
static void payload_stream(sink_t *s, int program)
{
    uint32_t n, k, b;
    uint8_t le[8];
    for (n = 0; n < ETP_STORE_N_TENSORS && !s->err; n++) {
        const etp_tensor_t *t = &NET->tensors[store_tensors[n]];
        uint32_t size = dtype_size[t->dtype];
        for (k = 0; k < t->count && !s->err; k++) {
            etp_wr_le(le, etp_elem_get(t->data, size, k), size);
            s->crc = etp_crc32(s->crc, le, size);
            for (b = 0; program && b < size; b++) {
                unit[s->fill++] = le[b];
                if (s->fill == ETP_FLASH_PROG) {
                    sink_flush(s);
                }
            }
        }
    }
    if (program) {
        sink_flush(s);
    }
}

/* The header of a state of this model with the given generation; the CRC is computed
 * from the RAM state (the payload as it will be written). */
static void header_build(uint32_t generation)
{
    sink_t s = {0, 0, 0, 0};
    uint32_t i;
    for (i = 0; i < HDR_AREA; i++) {
        hdr[i] = 0xFFu;
    }
    etp_wr32(hdr + ETP_STORE_MAGIC_OFF, ETP_STORE_MAGIC);
    etp_wr16(hdr + ETP_STORE_VERSION_OFF, ETP_STORE_VERSION);
    etp_wr16(hdr + ETP_STORE_HEADER_SIZE_OFF, ETP_STORE_HEADER_SIZE);
    etp_wr32(hdr + ETP_STORE_GENERATION_OFF, generation);
    etp_wr32(hdr + ETP_STORE_LENGTH_OFF, ETP_STORE_PAYLOAD);
    for (i = 0; i < 32u; i++) {
        hdr[ETP_STORE_MODEL_HASH_OFF + i] = model_hash[i];
    }
    s.crc = etp_crc32(0, hdr, ETP_STORE_CRC_OFF);
    payload_stream(&s, 0);
    etp_wr32(hdr + ETP_STORE_CRC_OFF, s.crc);
}

static int slot_erase(uint32_t base)
{
    uint32_t off;
    for (off = 0; off < SLOT_BYTES; off += ETP_FLASH_PAGE) {   /* the header's page first */
        info.erases++;
        if (port_flash_erase(base + off) != 0) {
            return ETP_STORE_EFLASH;
        }
    }
    return ETP_STORE_OK;
}

static int program_payload(uint32_t base)
{
    sink_t s = {0, base + HDR_AREA, 0, 0};
    payload_stream(&s, 1);
    return s.err ? ETP_STORE_EFLASH : ETP_STORE_OK;
}

static int program_header(uint32_t base)
{
    uint32_t off;
    for (off = 0; off < HDR_AREA; off += ETP_FLASH_PROG) {     /* the CRC is in the last unit */
        info.programs++;
        if (port_flash_program(base + off, hdr + off, ETP_FLASH_PROG) != 0) {
            return ETP_STORE_EFLASH;
        }
    }
    return ETP_STORE_OK;
}

/* Check slot k as the boot does: ETP_STORE_OK and its generation, or why not
 * (ETP_STORE_EMPTY: not a valid slot of this model; ETP_STORE_EFLASH: read error).
 * *foreign is set when the header is intact but of another model or format. */
static int slot_check(uint32_t k, uint32_t *generation, int *foreign)
{
    uint32_t base = k * SLOT_BYTES, i, n, crc;
    uint8_t buf[CHUNK];
    *foreign = 0;
    if (port_flash_read(base, hdr, ETP_STORE_HEADER_SIZE) != 0) {
        return ETP_STORE_EFLASH;
    }
    if (etp_rd32(hdr + ETP_STORE_MAGIC_OFF) != ETP_STORE_MAGIC) {
        return ETP_STORE_EMPTY;
    }
    if (etp_rd32(hdr + ETP_STORE_VERSION_OFF) != (ETP_STORE_VERSION | (ETP_STORE_HEADER_SIZE << 16))
        || etp_rd32(hdr + ETP_STORE_LENGTH_OFF) != ETP_STORE_PAYLOAD) {
        *foreign = 1;                   /* another format or model */
        return ETP_STORE_EMPTY;
    }
    for (i = 0; i < 32u; i++) {
        if (hdr[ETP_STORE_MODEL_HASH_OFF + i] != model_hash[i]) {
            *foreign = 1;
            return ETP_STORE_EMPTY;
        }
    }
    crc = etp_crc32(0, hdr, ETP_STORE_CRC_OFF);
    for (i = 0; i < ETP_STORE_PAYLOAD; i += n) {
        n = ETP_STORE_PAYLOAD - i < CHUNK ? ETP_STORE_PAYLOAD - i : CHUNK;
        if (port_flash_read(base + HDR_AREA + i, buf, n) != 0) {
            return ETP_STORE_EFLASH;
        }
        crc = etp_crc32(crc, buf, n);
    }
    if (crc != etp_rd32(hdr + ETP_STORE_CRC_OFF)) {
        return ETP_STORE_EMPTY;         /* torn, partial or damaged */
    }
    *generation = etp_rd32(hdr + ETP_STORE_GENERATION_OFF);
    return ETP_STORE_OK;
}

/* Copy slot k's payload into the persistent tensors. */
static int slot_load(uint32_t k)
{
    uint32_t off = k * SLOT_BYTES + HDR_AREA, end = off + ETP_STORE_PAYLOAD, n, e;
    uint32_t have = 0, pos = 0;
    uint8_t buf[CHUNK], b;
    for (n = 0; n < ETP_STORE_N_TENSORS; n++) {
        const etp_tensor_t *t = &NET->tensors[store_tensors[n]];
        for (e = 0; e < t->count; e++) {
            uint64_t v = 0;
            for (b = 0; b < dtype_size[t->dtype]; b++) {
                if (pos == have) {
                    have = end - off < CHUNK ? end - off : CHUNK;
                    if (have == 0 || port_flash_read(off, buf, have) != 0) {
                        return ETP_STORE_EFLASH;
                    }
                    off += have;
                    pos = 0;
                }
                v |= (uint64_t)buf[pos++] << (8u * b);
            }
            etp_elem_set(t->data, dtype_size[t->dtype], e, v);
        }
    }
    return ETP_STORE_OK;
}

int etp_store_boot(void)
{
    uint32_t k, gen, best_gen = 0;
    uint8_t best = ETP_STORE_NO_SLOT;
    int st, foreign;
    info.slot = ETP_STORE_NO_SLOT;
    info.generation = 0;
    info.valid = info.foreign = 0;
    if (port_flash_size() < ETP_STORE_N_SLOTS * SLOT_BYTES) {
        info.boot_status = ETP_STORE_ESIZE;
        return info.boot_status;
    }
    for (k = 0; k < ETP_STORE_N_SLOTS; k++) {
        st = slot_check(k, &gen, &foreign);
        if (st == ETP_STORE_EFLASH) {
            info.boot_status = ETP_STORE_EFLASH;
            return info.boot_status;
        }
        if (foreign) {
            info.foreign |= (uint8_t)(1u << k);
        }
        if (st == ETP_STORE_OK) {
            info.valid |= (uint8_t)(1u << k);
            if (best == ETP_STORE_NO_SLOT || gen > best_gen) {
                best = (uint8_t)k;
                best_gen = gen;
            }
        }
    }
    if (best == ETP_STORE_NO_SLOT) {
        info.boot_status = ETP_STORE_EMPTY;
        return info.boot_status;
    }
    if (slot_load(best) != ETP_STORE_OK) {
        etp_init(0);                    /* never run on a half-loaded state */
        info.boot_status = ETP_STORE_EFLASH;
        return info.boot_status;
    }
    info.slot = best;
    info.generation = best_gen;
    info.boot_status = ETP_STORE_OK;
    return info.boot_status;
}

int etp_store_save(void)
{
    uint32_t target = info.slot == 0u ? 1u : 0u, gen = info.generation + 1u, got = 0;
    uint32_t base = target * SLOT_BYTES;
    int st, foreign;
    info.erases = info.programs = 0;
    if (port_flash_size() < ETP_STORE_N_SLOTS * SLOT_BYTES) {
        return ETP_STORE_ESIZE;
    }
    header_build(gen);
    st = slot_erase(base);
    if (st == ETP_STORE_OK) {
        st = program_payload(base);
    }
    if (st == ETP_STORE_OK) {
        st = program_header(base);
    }
    if (st != ETP_STORE_OK) {
        return st;
    }
    st = slot_check(target, &got, &foreign);
    if (st == ETP_STORE_EFLASH) {
        return st;
    }
    if (st != ETP_STORE_OK || got != gen) {
        return ETP_STORE_EVERIFY;
    }
    info.slot = (uint8_t)target;
    info.generation = gen;
    return ETP_STORE_OK;
}

int etp_store_factory_reset(void)
{
    /* the slot with the older state first: a cut in between leaves the newer one */
    uint32_t first = info.slot == 0u ? 1u : 0u;
    int st;
    info.erases = info.programs = 0;
    if (port_flash_size() < ETP_STORE_N_SLOTS * SLOT_BYTES) {
        return ETP_STORE_ESIZE;
    }
    st = slot_erase(first * SLOT_BYTES);
    if (st == ETP_STORE_OK) {
        st = slot_erase((1u - first) * SLOT_BYTES);
    }
    if (st != ETP_STORE_OK) {
        return st;
    }
    etp_init(0);
    info.slot = ETP_STORE_NO_SLOT;
    info.generation = 0;
    info.valid = 0;
    return ETP_STORE_OK;
}

const etp_store_info_t *etp_store_info(void)
{
    return &info;
}

uint32_t etp_store_flash_bytes(void)
{
    return ETP_STORE_N_SLOTS * SLOT_BYTES;
}
