/* startup.c -- Cortex-M vector table of the MPS2 boards (any Armv7-M or Armv8-M Mainline core:
 * the M4, M7 and M33 run it as it is): the core loads the stack pointer from entry 0 and jumps
 * to Reset_Handler, which goes on in C (etp_crt.c). The UART's RX interrupt sits at
 * ETP_UART_RX_IRQ (deploy/boards.py); the table ends there. */
#include <stdint.h>

extern uint32_t __stack_top__;
void Reset_Handler(void);
void SysTick_Handler(void);
void UART0_RX_Handler(void);
void etp_crt_start(void);

static void Default_Handler(void) {
    for (;;) { }   /* a fault: the host sees a device that stops answering */
}

/* An entry of the vector table: the initial stack pointer, then handlers. */
typedef union { void (*fn)(void); uint32_t *sp; } etp_vector_t;

__attribute__((section(".isr_vector"), used))
const etp_vector_t etp_vectors[16 + ETP_UART_RX_IRQ + 1] = {
    {.sp = &__stack_top__}, {.fn = Reset_Handler},
    {.fn = Default_Handler}, {.fn = Default_Handler},   /* NMI, HardFault */
    {.fn = Default_Handler}, {.fn = Default_Handler},   /* MemManage, BusFault */
    {.fn = Default_Handler}, {0}, {0}, {0}, {0},        /* UsageFault, reserved */
    {.fn = Default_Handler}, {.fn = Default_Handler},   /* SVC, DebugMon */
    {0}, {.fn = Default_Handler}, {.fn = SysTick_Handler}, /* reserved, PendSV, SysTick */
    [16 + ETP_UART_RX_IRQ] = {.fn = UART0_RX_Handler},  /* UART 0 RX (no other IRQ is enabled) */
};

void Reset_Handler(void) { etp_crt_start(); }
