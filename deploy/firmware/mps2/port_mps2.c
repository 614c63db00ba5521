/* port_mps2.c -- the port layer of the Arm MPS2 boards QEMU models (AN386 Cortex-M4,
 * AN500 Cortex-M7, AN505 Cortex-M33): CMSDK APB UART0 for the protocol, a cost counter, RAM
 * figures. The boards differ only in parameters, which deploy/boards.py passes as defines:
 * ETP_UART_BASE and ETP_UART_RX_IRQ (UART0 and its RX interrupt), ETP_SYSCLK_HZ (the core
 * clock SysTick counts), ETP_BOARD_NAME. The weight store's flash: semihost/semihost_flash.c.
 *
 * Cost counter (ETP_COUNTER_SRC):
 *   1 (default, QEMU): SysTick on the core clock, extended to 32 bits by its wrap interrupt.
 *     Under `qemu-system-arm -icount shift=S` every instruction advances virtual time by 2^S ns,
 *     so one tick of 1e9 / ETP_SYSCLK_HZ ns is ETP_COUNTER_RES instructions (deploy/boards.py
 *     computes it and passes S to QEMU).
 *   2 (a real board): DWT CYCCNT, CPU cycles (QEMU does not model the DWT). */
#include <stdint.h>
#include "etp_port.h"
#include "etp_proto.h"

#ifndef ETP_COUNTER_SRC
#define ETP_COUNTER_SRC 1
#endif
#if !defined(ETP_UART_BASE) || !defined(ETP_UART_RX_IRQ) || !defined(ETP_SYSCLK_HZ) || !defined(ETP_BOARD_NAME)
#error "the board's parameters come from deploy/boards.py (ETP_UART_BASE, _RX_IRQ, ETP_SYSCLK_HZ, ETP_BOARD_NAME)"
#endif
#ifndef ETP_UART_BAUD
#define ETP_UART_BAUD 115200u
#endif
#define SYSCLK_HZ ETP_SYSCLK_HZ

#define REG(a) (*(volatile uint32_t *)(a))
#define UART0 ETP_UART_BASE
#define UART_DATA REG(UART0 + 0x00)
#define UART_STATE REG(UART0 + 0x04)   /* bit0 TX full, bit1 RX full */
#define UART_CTRL REG(UART0 + 0x08)    /* bit0 TX enable, bit1 RX enable */
#define UART_INTSTATUS REG(UART0 + 0x0C) /* write 1 to clear: bit1 RX */
#define UART_BAUDDIV REG(UART0 + 0x10)
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)

extern uint32_t __data_start__, __bss_end__, __stack_bottom__, __stack_top__;
uint32_t etp_stack_used(void);
void SysTick_Handler(void);
void UART0_RX_Handler(void);

static volatile uint32_t systick_wraps;
void SysTick_Handler(void) { systick_wraps++; }
/* The RX interrupt only wakes the core from WFI; the byte is read by port_getc. */
void UART0_RX_Handler(void) { UART_INTSTATUS = 2u; }

void port_init(int argc, char **argv) {
    (void)argc; (void)argv;
    UART_BAUDDIV = SYSCLK_HZ / ETP_UART_BAUD;
    UART_CTRL = 3u | (1u << 3);             /* TX, RX, RX interrupt */
    NVIC_ISER(ETP_UART_RX_IRQ / 32u) = 1u << (ETP_UART_RX_IRQ % 32u);
#if ETP_COUNTER_SRC == 1
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u;   /* enable, interrupt on wrap, CPU clock */
#elif ETP_COUNTER_SRC == 2
    DEMCR |= 1u << 24;   /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;      /* CYCCNTENA */
#endif
}

/* idle_ms = 0: sleep (WFI) until a byte arrives. Otherwise poll the UART until a byte
 * arrives or idle_ms have passed on the core clock (SysTick or DWT, whichever
 * port_counter_now reads). */
int port_getc(uint32_t idle_ms) {
    if (!idle_ms) {
        while (!(UART_STATE & 2u)) __asm volatile("wfi");
        return (int)(UART_DATA & 0xFFu);
    }
    uint32_t t0 = port_counter_now(), ticks = idle_ms * (SYSCLK_HZ / 1000u);
    while (!(UART_STATE & 2u))
        if (port_counter_now() - t0 >= ticks) return -1;
    return (int)(UART_DATA & 0xFFu);
}

void port_write(const uint8_t *p, uint32_t n) {
    while (n--) {
        while (UART_STATE & 1u) { }
        UART_DATA = *p++;
    }
}

uint32_t port_counter_now(void) {
#if ETP_COUNTER_SRC == 1
    uint32_t w, v;
    do {
        w = systick_wraps;
        v = SYST_CVR;
    } while (w != systick_wraps);
    return (w << 24) + (0x00FFFFFFu - v);
#elif ETP_COUNTER_SRC == 2
    return DWT_CYCCNT;
#else
    return 0;
#endif
}

uint8_t port_counter_kind(void) {
#if ETP_COUNTER_SRC == 1
    return ETP_COUNTER_INSTRUCTIONS;
#elif ETP_COUNTER_SRC == 2
    return ETP_COUNTER_CYCLES;
#else
    return ETP_COUNTER_NONE;
#endif
}

uint16_t port_counter_res(void) {
#if ETP_COUNTER_SRC == 1
    return (uint16_t)ETP_COUNTER_RES;
#else
    return 1;
#endif
}

void port_ram(uint32_t *static_bytes, uint32_t *stack_size, uint32_t *stack_used) {
    *static_bytes = (uint32_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__data_start__);
    *stack_size = (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)&__stack_bottom__);
    *stack_used = etp_stack_used();
}

const char *port_board(void) {
#if ETP_COUNTER_SRC == 1
    return ETP_BOARD_NAME " (qemu)";
#else
    return ETP_BOARD_NAME;
#endif
}
