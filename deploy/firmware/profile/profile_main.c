/* profile_main.c -- where the instructions of a training step go, per function.
 *
 * Built by deploy/profile.py instead of main.c: the model's C is compiled with
 * -finstrument-functions, so every function entry/exit calls the hooks below, which
 * keep a call stack of counter readings and add each call's self and inclusive cost
 * (port units) to a table by function address (built without -finstrument-functions, the
 * hooks are never called and the totals are exact). main runs etp_init, ETP_PROF_STEPS
 * training steps and as many inference steps on xorshift inputs and prints a table for each
 * ("P train|infer addr calls self inclusive" per function) on the UART, and each step's cost ("F learn|forward|infer
 * cost": a training step that learnt, one that did not, an inference step). The hooks' own cost is
 * measured first (a frame with K empty child calls) and taken out: each call adds h
 * to its caller's self cost and e0 to its own, so self -= child_calls * h + calls * e0 and
 * inclusive -= descendants * (h + e0) + calls * e0. What remains is approximate only in
 * that instrumentation changes the compiler's inlining and register use. */
#include <stdint.h>
#include "etp_model.h"
#include "etp_port.h"

#ifndef ETP_PROF_STEPS
#define ETP_PROF_STEPS 101
#endif
#ifndef ETP_UPDATE_EVERY
#define ETP_UPDATE_EVERY 1u     /* a model header without it (the test double) learns on every step */
#endif
#define NOPROF __attribute__((no_instrument_function))
#define SLOTS 128
#define DEPTH 64

typedef struct { uintptr_t fn; uint32_t calls; uint64_t self, incl, child_calls, desc; } slot_t;
typedef struct { uintptr_t fn; uint32_t t0, child, child_calls, desc; } frame_t;
static slot_t slots[SLOTS];
static frame_t stack[DEPTH];
static int depth;

NOPROF static slot_t *slot(uintptr_t fn) {
    uint32_t h = (uint32_t)(fn >> 1) % SLOTS;
    for (int k = 0; k < SLOTS; k++, h = (h + 1) % SLOTS)
        if (slots[h].fn == fn || slots[h].fn == 0) { slots[h].fn = fn; return &slots[h]; }
    return &slots[0];
}

NOPROF void __cyg_profile_func_enter(void *fn, void *site) {
    (void)site;
    if (depth < DEPTH) {
        frame_t *f = &stack[depth];
        f->fn = (uintptr_t)fn; f->child = f->child_calls = f->desc = 0;
        f->t0 = port_counter_now();
    }
    depth++;
}

NOPROF void __cyg_profile_func_exit(void *fn, void *site) {
    uint32_t now = port_counter_now();
    (void)fn; (void)site;
    if (--depth >= DEPTH || depth < 0) return;
    uint32_t total = now - stack[depth].t0;
    slot_t *s = slot(stack[depth].fn);
    s->calls++;
    s->incl += total;
    s->self += total - stack[depth].child;
    s->child_calls += stack[depth].child_calls;
    s->desc += stack[depth].desc;
    if (depth > 0) {
        stack[depth - 1].child += total;
        stack[depth - 1].child_calls++;
        stack[depth - 1].desc += 1 + stack[depth].desc;
    }
}

/* The hooks' cost, in counter units x 2^16: h per child call (in the caller), e0 per call (own). */
static uint64_t hook_h, hook_e0;
#define CAL_K 256u
NOPROF static void calibrate(void) {
    __cyg_profile_func_enter((void *)1, 0);
    for (uint32_t k = 0; k < CAL_K; k++) {
        __cyg_profile_func_enter((void *)2, 0);
        __cyg_profile_func_exit((void *)2, 0);
    }
    __cyg_profile_func_exit((void *)1, 0);
    hook_h = (slot((uintptr_t)1)->self << 16) / CAL_K;
    hook_e0 = (slot((uintptr_t)2)->incl << 16) / CAL_K;
    for (int k = 0; k < SLOTS; k++) slots[k].fn = 0, slots[k].calls = 0, slots[k].self = slots[k].incl = 0,
                                    slots[k].child_calls = slots[k].desc = 0;
}

NOPROF static uint64_t sub0(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

NOPROF static void out(const char *s) { while (*s) port_write((const uint8_t *)s++, 1); }
NOPROF static void outu(uint64_t v) {
    char b[24]; int i = 23; b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    out(b + i);
}
NOPROF static void outx(uintptr_t v) {
    char b[12]; int i = 11; b[i] = 0;
    do { b[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    out(b + i);
}

static uint32_t cost_max;
NOPROF static void run(int train, uint32_t *r, uint64_t *cost) {
    etp_x_t x[ETP_N_IN];
    etp_reset_state();
    for (int t = 0; t < ETP_PROF_STEPS; t++) {
        for (int i = 0; i < ETP_N_IN; i++) {
            *r ^= *r << 13; *r ^= *r >> 17; *r ^= *r << 5;
            x[i] = (etp_x_t)((int32_t)(*r % 16384u) - 8192);
        }
        uint32_t t0 = port_counter_now();
        if (train) etp_train_step(x, (uint16_t)(t % ETP_N_OUT)); else etp_infer_step(x);
        uint32_t c = port_counter_now() - t0;
        *cost += c;
        cost_max = c > cost_max ? c : cost_max;
        /* every frame's cost, and whether it learnt (etp_train_step: t % ETP_UPDATE_EVERY == 0) */
        out(train ? (t % ETP_UPDATE_EVERY == 0u ? "F learn " : "F forward ") : "F infer ");
        outu((uint64_t)c * port_counter_res()); out("\n");
    }
}

/* The table of what ran since the last call ("P <kind> addr calls self inclusive" per function), then cleared. */
NOPROF static void table(const char *kind) {
    for (int k = 0; k < SLOTS; k++) if (slots[k].fn) {
        slot_t *q = &slots[k];
        uint64_t self = sub0(q->self << 16, q->child_calls * hook_h + q->calls * hook_e0) >> 16;
        uint64_t incl = sub0(q->incl << 16, q->desc * (hook_h + hook_e0) + q->calls * hook_e0) >> 16;
        out("P "); out(kind); out(" "); outx(q->fn); out(" "); outu(q->calls); out(" ");
        outu(self * port_counter_res()); out(" "); outu(incl * port_counter_res()); out("\n");
    }
    for (int k = 0; k < SLOTS; k++) slots[k].fn = 0, slots[k].calls = 0, slots[k].self = slots[k].incl = 0,
                                    slots[k].child_calls = slots[k].desc = 0;
}

NOPROF int main(int argc, char **argv) {
    uint32_t r = 12345;
    uint64_t train = 0, infer = 0;
    port_init(argc, argv);
    calibrate();
    etp_init(1);
    run(1, &r, &train);
    out("T train "); outu(train * port_counter_res() / ETP_PROF_STEPS); out("\n");
    out("T train_max "); outu((uint64_t)cost_max * port_counter_res()); out("\n");
    cost_max = 0;
    out("T hook_h "); outu((hook_h * port_counter_res()) >> 16); out("\n");
    out("T hook_e0 "); outu((hook_e0 * port_counter_res()) >> 16); out("\n");
    table("train");
    run(0, &r, &infer);
    out("T infer "); outu(infer * port_counter_res() / ETP_PROF_STEPS); out("\n");
    out("T infer_max "); outu((uint64_t)cost_max * port_counter_res()); out("\n");
    table("infer");
    out("END\n");
    for (;;) { }
}
