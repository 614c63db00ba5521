/* etp_server.c -- executes protocol commands against the generated model API.
 *
 * Sequence rule (deploy/protocol.py): HELLO opens a session at its SEQ when none is
 * open; inside a session HELLO is answered (joined, last SEQ) and changes nothing, so no
 * HELLO can make an executed frame run again. In a session a command runs only if
 * SEQ == last + 1; a repeat of the last command (same SEQ and CRC) gets the cached
 * response and is NOT run again; anything else gets ETP_ST_SEQ. Without a session every
 * command but HELLO gets ETP_ST_NO_SESSION. */
#include <string.h>
#include "etp_bytes.h"
#include "etp_model.h"
#include "etp_port.h"
#include "etp_server.h"
#ifdef ETP_HAS_STORE
#include "etp_store.h"
#endif

#define XB ((uint32_t)sizeof(etp_x_t))
#define X_BYTES ((uint32_t)ETP_N_IN * XB)

/* INFER/TRAIN may carry the whole input frame when it fits one payload; otherwise
 * the host loads it with LOAD_X chunks first. */
#define ETP_INLINE_X (X_BYTES + ETP_REQ_TRAIN_SIZE <= ETP_MAX_PAYLOAD)

static etp_x_t xbuf[ETP_N_IN];

/* etp_tensor_t.dtype: 0 i8, 1 u8, 2 i16, 3 u16, 4 i32, 5 u32, 6 i64 */
static const uint8_t DTYPE_SIZES[ETP_DTYPE_COUNT] = ETP_DTYPE_SIZES;   /* the contract's dtype table */
static uint32_t dtype_size(uint8_t dt) { return dt < ETP_DTYPE_COUNT ? DTYPE_SIZES[dt] : 8u; }

/* Byte i (little-endian element order, whatever the target's byte order) of a tensor. */
static uint8_t tensor_byte(const etp_tensor_t *t, uint32_t i) {
    uint32_t sz = dtype_size(t->dtype);
    return (uint8_t)(etp_elem_get(t->data, sz, i / sz) >> (8 * (i % sz)));
}
#if !ETP_PROTO_LOCKED
static void tensor_set_byte(const etp_tensor_t *t, uint32_t i, uint8_t byte) {
    uint32_t sz = dtype_size(t->dtype), e = i / sz, sh = 8 * (i % sz);
    uint64_t v = (etp_elem_get(t->data, sz, e) & ~((uint64_t)0xFFu << sh)) | ((uint64_t)byte << sh);
    etp_elem_set(t->data, sz, e, v);
}
#endif

static void load_x(const uint8_t *p, uint32_t first, uint32_t count) {
    for (uint32_t k = 0; k < count; k++, p += XB)
        xbuf[first + k] = (etp_x_t)(XB == 1 ? (int8_t)p[0] : (int16_t)etp_rd16(p));
}

static void cost_clear(etp_cost_t *c) { memset(c, 0, sizeof *c); c->min = 0xFFFFFFFFu; }
static void cost_add(etp_cost_t *c, uint32_t v) {
    c->n++; c->last = v; c->sum += v;
    if (v < c->min) c->min = v;
    if (v > c->max) c->max = v;
}
static uint32_t cost_since(const etp_server_t *s, uint32_t t0) {
    uint32_t d = port_counter_now() - t0;
    return d > s->cost_overhead ? d - s->cost_overhead : 0;
}

void etp_server_init(etp_server_t *s) {
    memset(s, 0, sizeof *s);
    etp_link_init(&s->link);
    cost_clear(&s->infer);
    cost_clear(&s->train);
    etp_init(0);
#ifdef ETP_HAS_STORE
    etp_store_boot();                 /* the newest saved state, if any (HELLO reports it) */
#endif
    uint32_t t0 = port_counter_now();
    s->cost_overhead = port_counter_now() - t0;
}

static uint16_t err(etp_server_t *s, uint8_t st, uint32_t detail) {
    s->pl[ETP_RSP_ERR_STATUS_OFF] = st;
    etp_wr32(s->pl + ETP_RSP_ERR_DETAIL_OFF, detail);
    return ETP_RSP_ERR_SIZE;
}

static uint16_t put_str(uint8_t *p, const char *str) {
    uint16_t n = 0;
    while (str[n] && n < ETP_MAX_NAME) n++;
    p[0] = (uint8_t)n;
    memcpy(p + 1, str, n);
    return (uint16_t)(n + 1);
}

/* HELLO's weight-store report (RSP_HELLO_STORE, after the strings). */
static uint16_t hello_store(uint8_t *p) {
#ifdef ETP_HAS_STORE
    const etp_store_info_t *i = etp_store_info();
    p[ETP_RSP_HELLO_STORE_HAS_STORE_OFF] = 1;
    p[ETP_RSP_HELLO_STORE_BOOT_OFF] = i->boot_status;
    p[ETP_RSP_HELLO_STORE_SLOT_OFF] = i->slot;
    p[ETP_RSP_HELLO_STORE_VALID_OFF] = i->valid;
    etp_wr32(p + ETP_RSP_HELLO_STORE_GENERATION_OFF, i->generation);
#else
    memset(p, 0, ETP_RSP_HELLO_STORE_SIZE);
#endif
    return ETP_RSP_HELLO_STORE_SIZE;
}

/* SAVE and FACTORY_RESET: kept in the locked build (a product saves after learning). */
static uint16_t cmd_store(etp_server_t *s, uint8_t cmd, uint16_t len) {
    if (len != 0) return err(s, ETP_ST_BAD_LEN, len);
#ifdef ETP_HAS_STORE
    int st = cmd == ETP_CMD_SAVE ? etp_store_save() : etp_store_factory_reset();
    if (st != ETP_STORE_OK) return err(s, ETP_ST_STORE, (uint32_t)st);
    if (cmd == ETP_CMD_FACTORY_RESET) {
        cost_clear(&s->infer);
        cost_clear(&s->train);
        s->train_steps = s->infer_steps = 0;
    }
    const etp_store_info_t *i = etp_store_info();
    s->pl[ETP_RSP_SAVE_STATUS_OFF] = ETP_ST_OK;
    s->pl[ETP_RSP_SAVE_SLOT_OFF] = i->slot;
    etp_wr32(s->pl + ETP_RSP_SAVE_GENERATION_OFF, i->generation);
    etp_wr32(s->pl + ETP_RSP_SAVE_ERASES_OFF, i->erases);
    etp_wr32(s->pl + ETP_RSP_SAVE_PROGRAMS_OFF, i->programs);
    return ETP_RSP_SAVE_SIZE;
#else
    return err(s, ETP_ST_UNSUPPORTED, cmd);
#endif
}

static uint16_t cmd_hello(etp_server_t *s) {
    uint8_t *p = s->pl;
    uint8_t flags = 0;
#if !ETP_PROTO_LOCKED
    flags |= ETP_FLAG_DEBUG_CMDS;
#endif
#ifdef ETP_HAS_SET_LR
    flags |= ETP_FLAG_SET_LR;
#endif
    p[ETP_RSP_HELLO_STATUS_OFF] = ETP_ST_OK;
    p[ETP_RSP_HELLO_VERSION_OFF] = ETP_PROTO_VERSION;
    p[ETP_RSP_HELLO_FLAGS_OFF] = flags;
    p[ETP_RSP_HELLO_COUNTER_OFF] = port_counter_kind();
    p[ETP_RSP_HELLO_X_BYTES_OFF] = (uint8_t)XB;
    etp_wr16(p + ETP_RSP_HELLO_N_IN_OFF, ETP_N_IN);
    etp_wr16(p + ETP_RSP_HELLO_N_OUT_OFF, ETP_N_OUT);
    etp_wr16(p + ETP_RSP_HELLO_MAX_PAYLOAD_OFF, ETP_MAX_PAYLOAD);
    etp_wr16(p + ETP_RSP_HELLO_N_TENSORS_OFF, etp_tensor_count());
    etp_wr32(p + ETP_RSP_HELLO_PROTO_HASH_OFF, ETP_PROTO_HASH);
    etp_wr16(p + ETP_RSP_HELLO_COUNTER_RES_OFF, port_counter_res());
    p[ETP_RSP_HELLO_JOINED_OFF] = s->session;
    etp_wr16(p + ETP_RSP_HELLO_LAST_SEQ_OFF, s->last_seq);
    uint16_t n = ETP_RSP_HELLO_SIZE;
    n = (uint16_t)(n + put_str(p + n, ETP_GEN_VERSION));
    /* the model hash may be long: send at most 64 hex digits */
    const char *h = ETP_MODEL_HASH;
    uint16_t hl = 0;
    while (h[hl] && hl < 64) hl++;
    p[n] = (uint8_t)hl;
    memcpy(p + n + 1, h, hl);
    n = (uint16_t)(n + hl + 1);
    n = (uint16_t)(n + put_str(p + n, port_board()));
    return (uint16_t)(n + hello_store(p + n));
}

static uint16_t step_rsp(etp_server_t *s, etp_status_t st, uint32_t cost, uint32_t steps) {
    if (st != ETP_OK) return err(s, ETP_ST_MODEL, (uint32_t)st);
    s->pl[ETP_RSP_STEP_STATUS_OFF] = ETP_ST_OK;
    etp_wr16(s->pl + ETP_RSP_STEP_PRED_OFF, etp_predict());
    etp_wr32(s->pl + ETP_RSP_STEP_COST_OFF, cost);
    etp_wr32(s->pl + ETP_RSP_STEP_STEPS_OFF, steps);
    return ETP_RSP_STEP_SIZE;
}

static uint16_t cmd_counters(etp_server_t *s, int clear) {
    uint8_t *p = s->pl;
    uint32_t ram, stack, used;
    port_ram(&ram, &stack, &used);
    p[ETP_RSP_COUNTERS_STATUS_OFF] = ETP_ST_OK;
    p[ETP_RSP_COUNTERS_COUNTER_OFF] = port_counter_kind();
    etp_wr16(p + ETP_RSP_COUNTERS_COUNTER_RES_OFF, port_counter_res());
    const etp_cost_t *c[2] = {&s->infer, &s->train};
    const uint32_t off[2] = {ETP_RSP_COUNTERS_INFER_N_OFF, ETP_RSP_COUNTERS_TRAIN_N_OFF};
    for (int k = 0; k < 2; k++) {   /* n, last, min, max (u32) then sum (u64), same order for both */
        etp_wr32(p + off[k], c[k]->n);
        etp_wr32(p + off[k] + 4, c[k]->last);
        etp_wr32(p + off[k] + 8, c[k]->n ? c[k]->min : 0);
        etp_wr32(p + off[k] + 12, c[k]->max);
        etp_wr_le(p + off[k] + 16, c[k]->sum, 8);
    }
    etp_wr32(p + ETP_RSP_COUNTERS_RAM_STATIC_OFF, ram);
    etp_wr32(p + ETP_RSP_COUNTERS_STACK_SIZE_OFF, stack);
    etp_wr32(p + ETP_RSP_COUNTERS_STACK_USED_OFF, used);
    etp_wr32(p + ETP_RSP_COUNTERS_FRAMES_OK_OFF, s->link.frames);
    etp_wr32(p + ETP_RSP_COUNTERS_HDR_ERRORS_OFF, s->link.hdr_errors);
    etp_wr32(p + ETP_RSP_COUNTERS_CRC_ERRORS_OFF, s->link.crc_errors);
    etp_wr32(p + ETP_RSP_COUNTERS_SEQ_ERRORS_OFF, s->seq_errors);
    etp_wr32(p + ETP_RSP_COUNTERS_REPEATS_OFF, s->repeats);
    etp_wr32(p + ETP_RSP_COUNTERS_BAD_CMDS_OFF, s->bad_cmds);
    etp_wr32(p + ETP_RSP_COUNTERS_IDLE_DROPS_OFF, s->link.idle_drops);
    if (clear) {
        cost_clear(&s->infer);
        cost_clear(&s->train);
    }
    return ETP_RSP_COUNTERS_SIZE;
}

#if !ETP_PROTO_LOCKED
static uint16_t cmd_tensor(etp_server_t *s, uint8_t cmd, const uint8_t *q, uint16_t len) {
    uint32_t fixed = cmd == ETP_CMD_TENSOR_INFO ? ETP_REQ_TENSOR_INFO_SIZE
                   : cmd == ETP_CMD_READ_TENSOR ? ETP_REQ_READ_TENSOR_SIZE : ETP_REQ_WRITE_TENSOR_SIZE;
    if (len < fixed || (cmd != ETP_CMD_WRITE_TENSOR && len != fixed)) return err(s, ETP_ST_BAD_LEN, len);
    uint32_t idx = etp_rd16(q); /* the index is the first field of all three layouts */
    if (idx >= etp_tensor_count()) return err(s, ETP_ST_BAD_ARG, idx);
    const etp_tensor_t *t = etp_tensor(idx);
    if (!t || t->dtype >= ETP_DTYPE_COUNT || !t->data) return err(s, ETP_ST_BAD_ARG, idx);
    uint32_t sz = dtype_size(t->dtype);
    if (t->count > 0xFFFFFFFFu / sz) return err(s, ETP_ST_BAD_ARG, idx);
    uint32_t bytes = t->count * sz;
    if (cmd == ETP_CMD_TENSOR_INFO) {
        s->pl[ETP_RSP_TENSOR_INFO_STATUS_OFF] = ETP_ST_OK;
        s->pl[ETP_RSP_TENSOR_INFO_DTYPE_OFF] = t->dtype;
        s->pl[ETP_RSP_TENSOR_INFO_WRITABLE_OFF] = t->writable;
        etp_wr32(s->pl + ETP_RSP_TENSOR_INFO_COUNT_OFF, t->count);
        return (uint16_t)(ETP_RSP_TENSOR_INFO_SIZE + put_str(s->pl + ETP_RSP_TENSOR_INFO_SIZE, t->name ? t->name : ""));
    }
    if (cmd == ETP_CMD_READ_TENSOR) {
        uint32_t off = etp_rd32(q + ETP_REQ_READ_TENSOR_OFFSET_OFF), n = etp_rd16(q + ETP_REQ_READ_TENSOR_LENGTH_OFF);
        if (n > ETP_MAX_PAYLOAD - ETP_RSP_READ_TENSOR_SIZE || off > bytes || n > bytes - off)
            return err(s, ETP_ST_BAD_ARG, off);
        s->pl[ETP_RSP_READ_TENSOR_STATUS_OFF] = ETP_ST_OK;
        for (uint32_t i = 0; i < n; i++) s->pl[ETP_RSP_READ_TENSOR_SIZE + i] = tensor_byte(t, off + i);
        return (uint16_t)(ETP_RSP_READ_TENSOR_SIZE + n);
    }
    uint32_t off = etp_rd32(q + ETP_REQ_WRITE_TENSOR_OFFSET_OFF), n = len - fixed;
    if (!t->writable) return err(s, ETP_ST_READONLY, idx);
    if (off > bytes || n > bytes - off) return err(s, ETP_ST_BAD_ARG, off);
    for (uint32_t i = 0; i < n; i++) tensor_set_byte(t, off + i, q[fixed + i]);
    s->pl[0] = ETP_ST_OK;
    return ETP_RSP_OK_SIZE;
}

/* READ_STATE: bytes [offset, offset + length) of all tensors one after another in table
 * order, so a host reads the whole state in as few frames as the payload allows. */
static uint16_t cmd_state(etp_server_t *s, const uint8_t *q, uint16_t len) {
    if (len != ETP_REQ_READ_STATE_SIZE) return err(s, ETP_ST_BAD_LEN, len);
    uint32_t off = etp_rd32(q + ETP_REQ_READ_STATE_OFFSET_OFF), n = etp_rd16(q + ETP_REQ_READ_STATE_LENGTH_OFF);
    uint32_t base = 0, k = 0, i;
    if (n > ETP_MAX_PAYLOAD - ETP_RSP_READ_STATE_SIZE) return err(s, ETP_ST_BAD_ARG, n);
    for (i = 0; i < etp_tensor_count() && k < n; i++) {
        const etp_tensor_t *t = etp_tensor(i);
        if (!t || t->dtype >= ETP_DTYPE_COUNT || !t->data) return err(s, ETP_ST_BAD_ARG, i);
        uint32_t bytes = t->count * dtype_size(t->dtype);
        for (; off + k < base + bytes && k < n; k++)
            s->pl[ETP_RSP_READ_STATE_SIZE + k] = tensor_byte(t, off + k - base);
        base += bytes;
    }
    if (k < n) return err(s, ETP_ST_BAD_ARG, off);   /* past the end of the state */
    s->pl[ETP_RSP_READ_STATE_STATUS_OFF] = ETP_ST_OK;
    return (uint16_t)(ETP_RSP_READ_STATE_SIZE + n);
}

/* SET_OPTIMIZER: etp_set_optimizer (the full generated API only); verify-c's scripts use it. */
static uint16_t cmd_optimizer(etp_server_t *s, const uint8_t *q, uint16_t len) {
    if (len != ETP_REQ_SET_OPTIMIZER_SIZE) return err(s, ETP_ST_BAD_LEN, len);
#ifdef ETP_HAS_SET_LR
    etp_status_t st = etp_set_optimizer(q[ETP_REQ_SET_OPTIMIZER_KIND_OFF], q[ETP_REQ_SET_OPTIMIZER_BETA_SHIFT_OFF],
                                        q[ETP_REQ_SET_OPTIMIZER_TRAIN_ALL_OFF],
                                        (int8_t)q[ETP_REQ_SET_OPTIMIZER_CLIP_OFF]);
    if (st != ETP_OK) return err(s, st == ETP_EBADARG ? ETP_ST_BAD_ARG : ETP_ST_MODEL, (uint32_t)st);
    s->pl[0] = ETP_ST_OK;
    return ETP_RSP_OK_SIZE;
#else
    (void)q;
    return err(s, ETP_ST_UNSUPPORTED, ETP_CMD_SET_OPTIMIZER);
#endif
}
#endif

/* AUDIO_PCM / AUDIO_RUN: raw audio through the integer frontend (etp_frontend.h, exported
 * with the model when it carries the frontend; deploy/build.py defines ETP_HAS_FRONTEND). */
#ifdef ETP_HAS_FRONTEND
#include "etp_frontend.h"
#if ETP_N_IN != ETP_FE_FEATURES
#error "the audio frontend produces ETP_FE_FEATURES inputs per frame; the model takes ETP_N_IN"
#endif
static etp_fe_t audio_fe;
static uint8_t audio_open;            /* an utterance was started (AUDIO_PCM with start=1) */

#if ETP_FE_TRACE && !ETP_PROTO_LOCKED
/* verify-c --frontend (deploy/verify_frontend.py): every frame's intermediates, kept by the
 * frontend's hook as it computes them (~140 KB: host builds only), read with READ_FE. */
#define FE_REC (4u + 8u * ETP_FE_N_BINS + 8u * ETP_FE_MELS + 2u * ETP_FE_MELS)
#define FE_OUT (4u * ETP_FE_FEATURES + XB * ETP_FE_FEATURES)
#if FE_REC + 1u > ETP_MAX_PAYLOAD || 4u + 2u * ETP_FE_FRAMES * ETP_FE_MELS + 1u > ETP_MAX_PAYLOAD
#error "ETP_FE_TRACE needs a build whose payload holds a whole record (deploy.protocol.PIPE_MAX_PAYLOAD)"
#endif
static uint8_t fe_trace[ETP_FE_FRAMES][FE_REC];

static uint8_t *wr64(uint8_t *p, int64_t v) {
    etp_wr32(p, (uint32_t)(uint64_t)v);
    etp_wr32(p + 4, (uint32_t)((uint64_t)v >> 32));
    return p + 8;
}

static void fe_hook(void *ctx, const etp_fe_t *f, uint16_t t) {
    uint8_t *p = fe_trace[t];
    (void)ctx;
    etp_wr32(p, (uint32_t)f->shift);
    p += 4;
    for (uint32_t k = 0; k < ETP_FE_N_BINS; k++) p = wr64(p, f->work.power[k]);
    for (uint32_t b = 0; b < ETP_FE_MELS; b++) p = wr64(p, f->work.mel[b]);
    for (uint32_t b = 0; b < ETP_FE_MELS; b++, p += 2) etp_wr16(p, (uint16_t)f->lm[t][b]);
}

static uint16_t cmd_read_fe(etp_server_t *s, const uint8_t *q, uint16_t len) {
    uint8_t *p = s->pl + ETP_RSP_READ_FE_SIZE;
    if (len != ETP_REQ_READ_FE_SIZE) return err(s, ETP_ST_BAD_LEN, len);
    uint32_t what = q[ETP_REQ_READ_FE_WHAT_OFF], t = etp_rd16(q + ETP_REQ_READ_FE_FRAME_OFF);
    s->pl[ETP_RSP_READ_FE_STATUS_OFF] = ETP_ST_OK;
    if (what == ETP_READ_FE_FRAME) {
        if (t >= audio_fe.frames) return err(s, ETP_ST_BAD_ARG, t);
        memcpy(p, fe_trace[t], FE_REC);
        return (uint16_t)(ETP_RSP_READ_FE_SIZE + FE_REC);
    }
    if (what == ETP_READ_FE_END) {
        if (etp_fe_l(&audio_fe, ETP_FE_FRAMES) != ETP_OK) return err(s, ETP_ST_BAD_ARG, what);
        etp_wr32(p, (uint32_t)audio_fe.lmax);
        p += 4;
        for (uint32_t f = 0; f < ETP_FE_FRAMES; f++)
            for (uint32_t b = 0; b < ETP_FE_MELS; b++, p += 2) etp_wr16(p, (uint16_t)audio_fe.lm[f][b]);
        return (uint16_t)(p - s->pl);
    }
    if (what == ETP_READ_FE_OUT) {
        int32_t feats[ETP_FE_FEATURES] = {0};
        etp_status_t st = etp_fe_features(&audio_fe, (uint16_t)t, feats);
        if (st == ETP_OK) st = etp_fe_input(&audio_fe, (uint16_t)t, xbuf);
        if (st != ETP_OK) return err(s, ETP_ST_MODEL, (uint32_t)st);
        for (uint32_t j = 0; j < ETP_FE_FEATURES; j++, p += 4) etp_wr32(p, (uint32_t)feats[j]);
        for (uint32_t j = 0; j < ETP_FE_FEATURES; j++, p += XB) {
            if (XB == 1) p[0] = (uint8_t)xbuf[j];
            else etp_wr16(p, (uint16_t)xbuf[j]);
        }
        return (uint16_t)(ETP_RSP_READ_FE_SIZE + FE_OUT);
    }
    return err(s, ETP_ST_BAD_ARG, what);
}
#endif

/* The optimizer's step count (the "opt_steps" tensor, one u32): a training step learned when it moved. NULL when
 * the model has none of that type and size. */
static const uint32_t *opt_steps(void) {
    const etp_tensor_t *t = etp_tensor_find("opt_steps", ETP_U32, 1);
    return t ? (const uint32_t *)t->data : NULL;
}

static uint16_t cmd_audio(etp_server_t *s, uint8_t cmd, const uint8_t *q, uint16_t len) {
    uint8_t *p = s->pl;
    if (cmd == ETP_CMD_AUDIO_PCM) {
        if (len < ETP_REQ_AUDIO_PCM_SIZE || (len - ETP_REQ_AUDIO_PCM_SIZE) % 2u ||
            (len - ETP_REQ_AUDIO_PCM_SIZE) / 2u > ETP_AUDIO_CHUNK) return err(s, ETP_ST_BAD_LEN, len);
        uint32_t n = (len - ETP_REQ_AUDIO_PCM_SIZE) / 2u, t0 = port_counter_now();
        int16_t pcm[ETP_AUDIO_CHUNK];
        if (q[ETP_REQ_AUDIO_PCM_START_OFF]) {
#if ETP_FE_TRACE && !ETP_PROTO_LOCKED
            audio_fe.hook = fe_hook;          /* etp_fe_reset keeps it */
#endif
            etp_fe_reset(&audio_fe);
            audio_open = 1;
        } else if (!audio_open) {
            return err(s, ETP_ST_BAD_ARG, 0);
        }
        for (uint32_t i = 0; i < n; i++) pcm[i] = (int16_t)etp_rd16(q + ETP_REQ_AUDIO_PCM_SIZE + 2 * i);
        etp_status_t st = etp_fe_push(&audio_fe, pcm, n);
        uint32_t cost = cost_since(s, t0);
        if (st != ETP_OK) return err(s, ETP_ST_BAD_ARG, audio_fe.samples);
        p[ETP_RSP_AUDIO_PCM_STATUS_OFF] = ETP_ST_OK;
        etp_wr16(p + ETP_RSP_AUDIO_PCM_FRAMES_OFF, audio_fe.frames);
        etp_wr32(p + ETP_RSP_AUDIO_PCM_COST_OFF, cost);
        return ETP_RSP_AUDIO_PCM_SIZE;
    }
    if (len != ETP_REQ_AUDIO_RUN_SIZE) return err(s, ETP_ST_BAD_LEN, len);
    uint32_t label = etp_rd16(q + ETP_REQ_AUDIO_RUN_LABEL_OFF), t0 = port_counter_now();
    if (label >= ETP_N_OUT && label != ETP_AUDIO_NO_LABEL) return err(s, ETP_ST_BAD_ARG, label);
    if (!audio_open || audio_fe.done) return err(s, ETP_ST_BAD_ARG, audio_fe.frames);
    audio_open = 0;
    /* In real time the utterance's work after its audio runs one unit per 10 ms slot, beside the next audio's
     * hops: each padded frame (the last with the rest of etp_fe_finish), then each frame's input and network
     * step. slot_max is the largest unit, each measured as it runs. */
    uint32_t fe_finish = 0, fe_frames = 0, net_sum = 0, net_max = 0, crc = 0, slot_max = 0;
    uint32_t learn_n = 0, learn_sum = 0, learn_max = 0;   /* the training steps that learned (the schedule's) */
    const uint32_t *ost = opt_steps();
    do {
        t0 = port_counter_now();
        if (audio_fe.frames + 1u < ETP_FE_FRAMES) etp_fe_pad_frame(&audio_fe);
        else etp_fe_finish(&audio_fe);           /* the last padded frame, if any, and the end */
        uint32_t c = cost_since(s, t0);
        fe_finish += c;
        if (c > slot_max) slot_max = c;
    } while (!audio_fe.done);
    etp_status_t st = ETP_OK;
    for (uint16_t t = 0; t < ETP_FE_FRAMES && st == ETP_OK; t++) {
        uint8_t xb[ETP_FE_FEATURES * XB];
        t0 = port_counter_now();
        etp_fe_input(&audio_fe, t, xbuf);
        uint32_t c_in = cost_since(s, t0);
        fe_frames += c_in;
        t0 = port_counter_now();
        if (label == ETP_AUDIO_NO_LABEL) {
            st = etp_infer_step(xbuf);
            cost_add(&s->infer, cost_since(s, t0));
            if (st == ETP_OK) s->infer_steps++;
        } else {
            uint32_t o0 = ost != NULL ? *ost : 0u;
            st = etp_train_step(xbuf, (uint16_t)label);
            cost_add(&s->train, cost_since(s, t0));
            if (st == ETP_OK) s->train_steps++;
            if (ost != NULL && *ost != o0) {
                learn_n++;
                learn_sum += s->train.last;
                if (s->train.last > learn_max) learn_max = s->train.last;
            }
        }
        uint32_t c = label == ETP_AUDIO_NO_LABEL ? s->infer.last : s->train.last;
        net_sum += c;
        if (c > net_max) net_max = c;
        if (c_in + c > slot_max) slot_max = c_in + c;
        for (uint32_t j = 0; j < ETP_FE_FEATURES; j++) {   /* little-endian, as the host packs them */
            uint16_t v = (uint16_t)(int16_t)xbuf[j];
            for (uint32_t k = 0; k < XB; k++) xb[XB * j + k] = (uint8_t)(v >> (8 * k));
        }
        crc = etp_crc32(crc, xb, ETP_FE_FEATURES * XB);
    }
    if (st != ETP_OK) return err(s, ETP_ST_MODEL, (uint32_t)st);
    p[ETP_RSP_AUDIO_RUN_STATUS_OFF] = ETP_ST_OK;
    etp_wr16(p + ETP_RSP_AUDIO_RUN_PRED_OFF, etp_predict());
    etp_wr32(p + ETP_RSP_AUDIO_RUN_STEPS_OFF, label == ETP_AUDIO_NO_LABEL ? s->infer_steps : s->train_steps);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_FE_FINISH_OFF, fe_finish);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_FE_FRAMES_OFF, fe_frames);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_NET_SUM_OFF, net_sum);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_NET_MAX_OFF, net_max);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_X_CRC_OFF, crc);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_SLOT_MAX_OFF, slot_max);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_LEARN_N_OFF, learn_n);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_LEARN_SUM_OFF, learn_sum);
    etp_wr32(p + ETP_RSP_AUDIO_RUN_LEARN_MAX_OFF, learn_max);
    return ETP_RSP_AUDIO_RUN_SIZE;
}
#else
static uint16_t cmd_audio(etp_server_t *s, uint8_t cmd, const uint8_t *q, uint16_t len) {
    (void)q; (void)len;
    return err(s, ETP_ST_UNSUPPORTED, cmd);
}
#endif

/* DET_STEP: one frame's readout increments through the keyword detector (etp_detect.h, exported
 * with the model when it carries it; deploy/build.py defines ETP_HAS_DETECT). Transport only:
 * parse, etp_det_step, answer its report and state. */
#ifdef ETP_HAS_DETECT
#include "etp_detect.h"
#if ETP_DET_CLASSES != ETP_N_OUT
#error "the detector reads one readout increment per class: ETP_DET_CLASSES must equal ETP_N_OUT"
#endif
#if ETP_REQ_DET_STEP_SIZE + 4u * ETP_DET_CLASSES > ETP_MAX_PAYLOAD || \
    ETP_RSP_DET_STEP_SIZE + 4u * ETP_DET_CLASSES > ETP_MAX_PAYLOAD
#error "DET_STEP's increments and window sums must fit one payload"
#endif
static etp_det_t det;
static uint8_t det_open; /* etp_det_init ran (DET_STEP with start=1) */

static uint16_t cmd_det(etp_server_t *s, const uint8_t *q, uint16_t len) {
    uint8_t *p = s->pl;
    if (len != ETP_REQ_DET_STEP_SIZE + 4u * ETP_DET_CLASSES) return err(s, ETP_ST_BAD_LEN, len);
    if (q[ETP_REQ_DET_STEP_START_OFF]) etp_det_init(&det), det_open = 1;
    if (!det_open) return err(s, ETP_ST_BAD_ARG, 0);
    int32_t d[ETP_DET_CLASSES];
    for (uint32_t j = 0; j < ETP_DET_CLASSES; j++) d[j] = (int32_t)etp_rd32(q + ETP_REQ_DET_STEP_SIZE + 4u * j);
    etp_det_report_t r = {0, -1, 0};
    uint32_t t0 = port_counter_now();
    int fired = etp_det_step(&det, d, &r);
    uint32_t cost = cost_since(s, t0);
    uint32_t crc = 0;
    for (uint32_t w = 0; w < ETP_DET_WINDOW; w++)
        for (uint32_t j = 0; j < ETP_DET_CLASSES; j++) {
            uint8_t b[4];
            etp_wr32(b, (uint32_t)det.buf[w][j]);
            crc = etp_crc32(crc, b, 4u);
        }
    p[ETP_RSP_DET_STEP_STATUS_OFF] = ETP_ST_OK;
    p[ETP_RSP_DET_STEP_FIRED_OFF] = (uint8_t)fired;
    etp_wr16(p + ETP_RSP_DET_STEP_CLS_OFF, (uint16_t)(int16_t)r.cls);
    etp_wr32(p + ETP_RSP_DET_STEP_MARGIN_OFF, (uint32_t)r.margin);
    etp_wr32(p + ETP_RSP_DET_STEP_T_OFF, det.t);
    etp_wr32(p + ETP_RSP_DET_STEP_POS_OFF, det.pos);
    etp_wr32(p + ETP_RSP_DET_STEP_HOLD_OFF, (uint32_t)det.hold);
    etp_wr32(p + ETP_RSP_DET_STEP_LATCH_OFF, (uint32_t)det.latch);
    etp_wr32(p + ETP_RSP_DET_STEP_BUF_CRC_OFF, crc);
    etp_wr32(p + ETP_RSP_DET_STEP_COST_OFF, cost);
    for (uint32_t j = 0; j < ETP_DET_CLASSES; j++)
        etp_wr32(p + ETP_RSP_DET_STEP_SIZE + 4u * j, (uint32_t)det.sums[j]);
    return (uint16_t)(ETP_RSP_DET_STEP_SIZE + 4u * ETP_DET_CLASSES);
}
#else
static uint16_t cmd_det(etp_server_t *s, const uint8_t *q, uint16_t len) {
    (void)q; (void)len;
    return err(s, ETP_ST_UNSUPPORTED, ETP_CMD_DET_STEP);
}
#endif

/* STREAM: PCM of an endless stream through etp_listen.h (the frontend, the network, the detector per frame).
 * Transport only: parse, push, answer each finished frame's record (deploy/protocol.py STREAM_FRAME). */
#include "etp_listen.h"
#ifdef ETP_HAS_LISTEN
#define STREAM_MAX_FRAMES ((ETP_MAX_PAYLOAD - ETP_RSP_STREAM_SIZE) / ETP_STREAM_FRAME_SIZE)
#if STREAM_MAX_FRAMES < 5 || ETP_STREAM_CHUNK >= ETP_FE_HOP
#error "STREAM answers the 5 frames a hop can finish in one payload, and takes less than a hop per command"
#endif
static etp_listen_t stream_app;

static uint16_t cmd_stream(etp_server_t *s, const uint8_t *q, uint16_t len) {
    uint8_t *p = s->pl;
    if (len < ETP_REQ_STREAM_SIZE || (len - ETP_REQ_STREAM_SIZE) % 2u || (len - ETP_REQ_STREAM_SIZE) / 2u > ETP_STREAM_CHUNK)
        return err(s, ETP_ST_BAD_LEN, len);
    uint32_t flags = q[ETP_REQ_STREAM_FLAGS_OFF], n = (len - ETP_REQ_STREAM_SIZE) / 2u, hop_cost = 0, k = 0;
    int16_t pcm[ETP_STREAM_CHUNK];
    etp_status_t st;
    if ((flags & ETP_STREAM_START) && (st = etp_listen_start(&stream_app, port_counter_now, s->cost_overhead)) != ETP_OK)
        return err(s, ETP_ST_MODEL, (uint32_t)st);
    for (uint32_t i = 0; i < n; i++) pcm[i] = (int16_t)etp_rd16(q + ETP_REQ_STREAM_SIZE + 2 * i);
    if (etp_listen_push(&stream_app, pcm, n, &hop_cost) != ETP_OK) return err(s, ETP_ST_BAD_ARG, n);
    if ((flags & ETP_STREAM_END) && stream_app.fe.state == 0 && etp_listen_end(&stream_app) != ETP_OK)
        return err(s, ETP_ST_BAD_ARG, stream_app.fill);
    for (; k < STREAM_MAX_FRAMES; k++) {
        etp_listen_frame_t f;
        int got = etp_listen_frame(&stream_app, &f);
        if (got < 0) return err(s, ETP_ST_MODEL, (uint32_t)-got);
        if (!got) break;
        uint8_t *r = p + ETP_RSP_STREAM_SIZE + k * ETP_STREAM_FRAME_SIZE;
        etp_wr32(r + ETP_STREAM_FRAME_X_CRC_OFF, f.x_crc);
        etp_wr32(r + ETP_STREAM_FRAME_D_CRC_OFF, f.d_crc);
        etp_wr32(r + ETP_STREAM_FRAME_DET_CRC_OFF, f.det_crc);
        r[ETP_STREAM_FRAME_FIRED_OFF] = f.fired;
        etp_wr16(r + ETP_STREAM_FRAME_CLS_OFF, (uint16_t)f.cls);
        etp_wr32(r + ETP_STREAM_FRAME_MARGIN_OFF, (uint32_t)f.margin);
        etp_wr32(r + ETP_STREAM_FRAME_FE_OFF, f.fe_cost);
        etp_wr32(r + ETP_STREAM_FRAME_NET_OFF, f.net_cost);
        etp_wr32(r + ETP_STREAM_FRAME_DET_OFF, f.det_cost);
        s->infer_steps++;
    }
    p[ETP_RSP_STREAM_STATUS_OFF] = ETP_ST_OK;
    p[ETP_RSP_STREAM_FRAMES_OFF] = (uint8_t)k;
    p[ETP_RSP_STREAM_MORE_OFF] = (uint8_t)etp_fe_stream_ready(&stream_app.fe) || stream_app.fe.state == 1;
    etp_wr32(p + ETP_RSP_STREAM_HOP_COST_OFF, hop_cost);
    return (uint16_t)(ETP_RSP_STREAM_SIZE + k * ETP_STREAM_FRAME_SIZE);
}
#else
static uint16_t cmd_stream(etp_server_t *s, const uint8_t *q, uint16_t len) {
    (void)q; (void)len;
    return err(s, ETP_ST_UNSUPPORTED, ETP_CMD_STREAM);
}
#endif

/* Execute one in-sequence command; returns the response payload length. */
static uint16_t execute(etp_server_t *s, uint8_t cmd, const uint8_t *q, uint16_t len) {
    uint32_t t0;
    etp_status_t st;
    switch (cmd) {
    case ETP_CMD_HELLO:
        if (len != 0) return err(s, ETP_ST_BAD_LEN, len);
        return cmd_hello(s);
    case ETP_CMD_INIT:
        if (len != ETP_REQ_INIT_SIZE) return err(s, ETP_ST_BAD_LEN, len);
        st = etp_init(etp_rd32(q + ETP_REQ_INIT_SEED_OFF));
        cost_clear(&s->infer);
        cost_clear(&s->train);
        s->train_steps = s->infer_steps = 0;
        if (st != ETP_OK) return err(s, ETP_ST_MODEL, (uint32_t)st);
        s->pl[0] = ETP_ST_OK;
        return ETP_RSP_OK_SIZE;
    case ETP_CMD_RESET:
        if (len != 0) return err(s, ETP_ST_BAD_LEN, len);
        etp_reset_state();
        s->pl[0] = ETP_ST_OK;
        return ETP_RSP_OK_SIZE;
    case ETP_CMD_LOAD_X: {
        if (len < ETP_REQ_LOAD_X_SIZE || (len - ETP_REQ_LOAD_X_SIZE) % XB) return err(s, ETP_ST_BAD_LEN, len);
        uint32_t first = etp_rd16(q + ETP_REQ_LOAD_X_OFFSET_OFF), count = (len - ETP_REQ_LOAD_X_SIZE) / XB;
        if (first > ETP_N_IN || count > ETP_N_IN - first) return err(s, ETP_ST_BAD_ARG, first);
        load_x(q + ETP_REQ_LOAD_X_SIZE, first, count);
        s->pl[0] = ETP_ST_OK;
        return ETP_RSP_OK_SIZE;
    }
    case ETP_CMD_INFER:
        if (len != ETP_REQ_INFER_SIZE && !(ETP_INLINE_X && len == ETP_REQ_INFER_SIZE + X_BYTES))
            return err(s, ETP_ST_BAD_LEN, len);
        if (len > ETP_REQ_INFER_SIZE) load_x(q + ETP_REQ_INFER_SIZE, 0, ETP_N_IN);
        t0 = port_counter_now();
        st = etp_infer_step(xbuf);
        cost_add(&s->infer, cost_since(s, t0));
        if (st == ETP_OK) s->infer_steps++;
        return step_rsp(s, st, s->infer.last, s->infer_steps);
    case ETP_CMD_TRAIN: {
        if (len != ETP_REQ_TRAIN_SIZE && !(ETP_INLINE_X && len == ETP_REQ_TRAIN_SIZE + X_BYTES))
            return err(s, ETP_ST_BAD_LEN, len);
        uint32_t label = etp_rd16(q + ETP_REQ_TRAIN_LABEL_OFF);
        if (label >= ETP_N_OUT) return err(s, ETP_ST_BAD_ARG, label);
        if (len > ETP_REQ_TRAIN_SIZE) load_x(q + ETP_REQ_TRAIN_SIZE, 0, ETP_N_IN);
        t0 = port_counter_now();
        st = etp_train_step(xbuf, (uint16_t)label);
        cost_add(&s->train, cost_since(s, t0));
        if (st == ETP_OK) s->train_steps++;
        return step_rsp(s, st, s->train.last, s->train_steps);
    }
    case ETP_CMD_PREDICT:
        if (len != 0) return err(s, ETP_ST_BAD_LEN, len);
        s->pl[ETP_RSP_PREDICT_STATUS_OFF] = ETP_ST_OK;
        etp_wr16(s->pl + ETP_RSP_PREDICT_PRED_OFF, etp_predict());
        return ETP_RSP_PREDICT_SIZE;
    case ETP_CMD_DIGEST:
        if (len != 0) return err(s, ETP_ST_BAD_LEN, len);
        s->pl[ETP_RSP_DIGEST_STATUS_OFF] = ETP_ST_OK;
        etp_wr32(s->pl + ETP_RSP_DIGEST_DIGEST_OFF, etp_state_digest());
        etp_wr32(s->pl + ETP_RSP_DIGEST_TRAIN_STEPS_OFF, s->train_steps);
        etp_wr32(s->pl + ETP_RSP_DIGEST_INFER_STEPS_OFF, s->infer_steps);
        return ETP_RSP_DIGEST_SIZE;
    case ETP_CMD_COUNTERS:
        if (len != ETP_REQ_COUNTERS_SIZE) return err(s, ETP_ST_BAD_LEN, len);
        return cmd_counters(s, q[ETP_REQ_COUNTERS_CLEAR_OFF] != 0);
    case ETP_CMD_SET_LR:
        if (len != ETP_REQ_SET_LR_SIZE) return err(s, ETP_ST_BAD_LEN, len);
#ifdef ETP_HAS_SET_LR
        {
        uint32_t m = etp_rd16(q + ETP_REQ_SET_LR_M_OFF);
        int16_t e = (int16_t)etp_rd16(q + ETP_REQ_SET_LR_E_OFF);
        if (m > 255u) return err(s, ETP_ST_BAD_ARG, m);
        st = etp_set_lr((uint8_t)m, e);   /* ETP_EBADARG: outside the export's range (ETP_LR_MIN/MAX) */
        }
        if (st != ETP_OK) return err(s, st == ETP_EBADARG ? ETP_ST_BAD_ARG : ETP_ST_MODEL, (uint32_t)st);
        s->pl[0] = ETP_ST_OK;
        return ETP_RSP_OK_SIZE;
#else
        return err(s, ETP_ST_UNSUPPORTED, cmd);
#endif
    case ETP_CMD_SAVE:
    case ETP_CMD_FACTORY_RESET:
        return cmd_store(s, cmd, len);
    case ETP_CMD_AUDIO_PCM:
    case ETP_CMD_AUDIO_RUN:
        return cmd_audio(s, cmd, q, len);
    case ETP_CMD_DET_STEP:
        return cmd_det(s, q, len);
    case ETP_CMD_STREAM:
        return cmd_stream(s, q, len);
#if !ETP_PROTO_LOCKED
    case ETP_CMD_TENSOR_INFO:
    case ETP_CMD_READ_TENSOR:
    case ETP_CMD_WRITE_TENSOR:
        return cmd_tensor(s, cmd, q, len);
    case ETP_CMD_READ_STATE:
        return cmd_state(s, q, len);
    case ETP_CMD_SET_OPTIMIZER:
        return cmd_optimizer(s, q, len);
#endif
#if ETP_FE_TRACE && !ETP_PROTO_LOCKED && defined(ETP_HAS_FRONTEND)
    case ETP_CMD_READ_FE:
        return cmd_read_fe(s, q, len);
#endif
    default:
        s->bad_cmds++;
        return err(s, ETP_ST_UNKNOWN, cmd);
    }
}

static void send(etp_server_t *s, uint16_t seq, uint8_t cmd, uint16_t n, int cache) {
    uint8_t tmp[ETP_MAX_FRAME];
    uint8_t *out = cache ? s->rsp : tmp;
    uint16_t total = etp_link_encode(out, (uint8_t)(cmd | ETP_RESPONSE_BIT), seq, s->pl, n);
    if (cache) s->rsp_len = total;
    port_write(out, total);
}

static void on_frame(void *ctx, const etp_frame_t *f) {
    etp_server_t *s = (etp_server_t *)ctx;
    if (f->type & ETP_RESPONSE_BIT) { s->bad_cmds++; return; }   /* not for us: ignore */
    if (f->type == ETP_CMD_HELLO && s->session) {   /* identify only: the session is unchanged */
        send(s, f->seq, f->type, execute(s, f->type, f->payload, f->len), 0);
        return;
    }
    if (f->type == ETP_CMD_HELLO) {
        uint16_t n = execute(s, f->type, f->payload, f->len);
        if (s->pl[0] != ETP_ST_OK) { send(s, f->seq, f->type, n, 0); return; }   /* BAD_LEN opens nothing */
        s->session = 1;                     /* the session starts at this SEQ (joined = 0) */
        s->last_seq = f->seq;
        s->last_crc = f->crc;
        etp_wr16(s->pl + ETP_RSP_HELLO_LAST_SEQ_OFF, f->seq);
        send(s, f->seq, f->type, n, 1);
        return;
    }
    if (!s->session) {
        send(s, f->seq, f->type, err(s, ETP_ST_NO_SESSION, 0), 0);
        return;
    } else if (f->seq == s->last_seq && f->crc == s->last_crc && s->rsp_len) {
        s->repeats++;                       /* a retry: answer again, do not run again */
        port_write(s->rsp, s->rsp_len);
        return;
    } else if (f->seq != (uint16_t)(s->last_seq + 1u)) {
        s->seq_errors++;
        send(s, f->seq, f->type, err(s, ETP_ST_SEQ, (uint16_t)(s->last_seq + 1u)), 0);
        return;
    }
    uint16_t n = execute(s, f->type, f->payload, f->len);
    s->last_seq = f->seq;
    s->last_crc = f->crc;
    send(s, f->seq, f->type, n, 1);
}

void etp_server_feed(etp_server_t *s, uint8_t byte) { etp_link_feed(&s->link, byte, on_frame, s); }
void etp_server_idle(etp_server_t *s) { etp_link_idle(&s->link, on_frame, s); }
int etp_server_pending(const etp_server_t *s) { return s->link.n != 0; }
