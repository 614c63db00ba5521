/* port_virt.c -- the port layer of QEMU's RISC-V virt board (RV32IMAC, machine mode): its
 * ns16550a UART0 for the protocol, minstret as the cost counter, RAM figures. Parameters from
 * deploy/boards.py: ETP_UART_BASE, ETP_UART_PLIC_SRC (UART0's PLIC source), ETP_MTIME_HZ (the
 * CLINT timer, for the idle timeout), ETP_BOARD_NAME. The weight store's flash:
 * semihost/semihost_flash.c.
 *
 * Waiting for a byte: the UART's RX interrupt goes through the PLIC to mie.MEIE with
 * mstatus.MIE off, so it only ends WFI (no trap); the claim/complete re-arms the PLIC.
 * Counter: minstret counts retired instructions on a real RV32 core; QEMU derives it from
 * -icount's virtual clock, so with shift 0 it is the instruction count (ETP_COUNTER_RES 1). */
#include <stdint.h>
#include "etp_port.h"
#include "etp_proto.h"

#if !defined(ETP_UART_BASE) || !defined(ETP_UART_PLIC_SRC) || !defined(ETP_MTIME_HZ) || !defined(ETP_BOARD_NAME)
#error "the board's parameters come from deploy/boards.py (ETP_UART_BASE, _PLIC_SRC, ETP_MTIME_HZ, ETP_BOARD_NAME)"
#endif

#define REG8(a) (*(volatile uint8_t *)(uintptr_t)(a))
#define REG32(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define UART_RBR REG8(ETP_UART_BASE + 0u)     /* read: received byte; write: THR */
#define UART_IER REG8(ETP_UART_BASE + 1u)     /* bit0: RX data available interrupt */
#define UART_LSR REG8(ETP_UART_BASE + 5u)     /* bit0 data ready, bit5 TX holding register empty */
#define PLIC 0x0C000000u
#define PLIC_PRIORITY(s) REG32(PLIC + 4u * (s))
#define PLIC_ENABLE(s) REG32(PLIC + 0x2000u + 4u * ((s) / 32u))   /* context 0: hart 0, M-mode */
#define PLIC_THRESHOLD REG32(PLIC + 0x200000u)
#define PLIC_CLAIM REG32(PLIC + 0x200004u)
#define MTIME_LO REG32(0x0200BFF8u)            /* CLINT mtime, low word */
#define MIE_MEIE (1u << 11)

#define CSR_READ(csr, v) __asm volatile(".option push\n.option arch, +zicsr\ncsrr %0, " #csr "\n.option pop" : "=r"(v))
#define CSR_SET(csr, v) __asm volatile(".option push\n.option arch, +zicsr\ncsrs " #csr ", %0\n.option pop" :: "r"(v))

extern uint32_t __data_start__, __bss_end__, __stack_bottom__, __stack_top__;
uint32_t etp_stack_used(void);

void port_init(int argc, char **argv) {
    (void)argc; (void)argv;
    UART_IER = 1u;
    PLIC_PRIORITY(ETP_UART_PLIC_SRC) = 1u;
    PLIC_ENABLE(ETP_UART_PLIC_SRC) |= 1u << (ETP_UART_PLIC_SRC % 32u);
    PLIC_THRESHOLD = 0u;
    CSR_SET(mie, MIE_MEIE);
}

/* idle_ms = 0: sleep (WFI) until a byte arrives. Otherwise poll the UART until a byte
 * arrives or idle_ms have passed on the CLINT timer. */
int port_getc(uint32_t idle_ms) {
    if (!idle_ms) {
        while (!(UART_LSR & 1u)) {
            __asm volatile("wfi");
            uint32_t src = PLIC_CLAIM;
            if (src) PLIC_CLAIM = src;
        }
        return UART_RBR;
    }
    uint32_t t0 = MTIME_LO, ticks = idle_ms * (ETP_MTIME_HZ / 1000u);
    while (!(UART_LSR & 1u))
        if (MTIME_LO - t0 >= ticks) return -1;
    return UART_RBR;
}

void port_write(const uint8_t *p, uint32_t n) {
    while (n--) {
        while (!(UART_LSR & 0x20u)) { }
        UART_RBR = *p++;
    }
}

uint32_t port_counter_now(void) {
    uint32_t v;
    CSR_READ(minstret, v);
    return v;
}

uint8_t port_counter_kind(void) { return ETP_COUNTER_INSTRUCTIONS; }

uint16_t port_counter_res(void) { return (uint16_t)ETP_COUNTER_RES; }

void port_ram(uint32_t *static_bytes, uint32_t *stack_size, uint32_t *stack_used) {
    *static_bytes = (uint32_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__data_start__);
    *stack_size = (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)&__stack_bottom__);
    *stack_used = etp_stack_used();
}

const char *port_board(void) { return ETP_BOARD_NAME " (qemu)"; }
