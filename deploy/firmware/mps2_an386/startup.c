/* startup.c -- Cortex-M4 reset and vector table for mps2-an386 (any Cortex-M works
 * with the same code): copy .data from flash, zero .bss, paint the stack (for the
 * high-water mark the port reports), call main. */
#include <stdint.h>

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_bottom__, __stack_top__;
extern int main(int argc, char **argv);
void Reset_Handler(void);
void SysTick_Handler(void);
void UART0_RX_Handler(void);
uint32_t etp_stack_used(void);

#define STACK_PAINT 0xC0FFEE11u

static void Default_Handler(void) {
    for (;;) { }   /* a fault: the host sees a device that stops answering */
}

/* An entry of the vector table: the initial stack pointer, then handlers. */
typedef union { void (*fn)(void); uint32_t *sp; } etp_vector_t;

__attribute__((section(".isr_vector"), used))
const etp_vector_t etp_vectors[16 + 1] = {
    {.sp = &__stack_top__}, {.fn = Reset_Handler},
    {.fn = Default_Handler}, {.fn = Default_Handler},   /* NMI, HardFault */
    {.fn = Default_Handler}, {.fn = Default_Handler},   /* MemManage, BusFault */
    {.fn = Default_Handler}, {0}, {0}, {0}, {0},        /* UsageFault, reserved */
    {.fn = Default_Handler}, {.fn = Default_Handler},   /* SVC, DebugMon */
    {0}, {.fn = Default_Handler}, {.fn = SysTick_Handler}, /* reserved, PendSV, SysTick */
    {.fn = UART0_RX_Handler},                           /* IRQ 0: UART 0 RX */
};

__attribute__((noreturn)) void Reset_Handler(void) {
    uint32_t *src = &__etext, *dst = &__data_start__;
    while (dst < &__data_end__) *dst++ = *src++;
    for (dst = &__bss_start__; dst < &__bss_end__; dst++) *dst = 0;
    /* paint the stack below the current frame (and a 64-byte margin) */
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (dst = &__stack_bottom__; (uintptr_t)(dst + 16) < sp; dst++) *dst = STACK_PAINT;
    main(0, 0);
    for (;;) { }
}

uint32_t etp_stack_used(void) {
    uint32_t *p = &__stack_bottom__;
    while (p < &__stack_top__ && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)p);
}
