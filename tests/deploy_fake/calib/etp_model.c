/* etp_model.c -- TEST DOUBLE that calibrates the cost counter: etp_train_step runs a
 * loop of exactly 2 instructions (subs, bne; on RISC-V addi, bnez) x[0] times, so the
 * counter must read 2 * x[0] + a constant. Cortex-M or RISC-V (inline assembly). */
#include "etp_model.h"

static uint32_t state[1];
static const etp_tensor_t tensors[] = {{"state", 5, 1, 1, state}};

etp_status_t etp_init(uint32_t seed) { state[0] = seed; return ETP_OK; }
void etp_reset_state(void) { }
etp_status_t etp_infer_step(const etp_x_t *x) { (void)x; return ETP_OK; }
etp_status_t etp_train_step(const etp_x_t *x, uint16_t label) {
    uint32_t n = (uint32_t)(uint16_t)x[0];
    (void)label;
#if defined(__riscv)
    if (n) __asm volatile("1: addi %0, %0, -1\n\tbnez %0, 1b" : "+r"(n));
#else
    if (n) __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
#endif
    return ETP_OK;
}
uint16_t etp_predict(void) { return 0; }
uint32_t etp_state_digest(void) { return state[0]; }
uint32_t etp_tensor_count(void) { return 1; }
const etp_tensor_t *etp_tensor(uint32_t i) { return i < 1 ? &tensors[0] : 0; }
