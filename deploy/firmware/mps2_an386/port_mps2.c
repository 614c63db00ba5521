/* port_mps2.c -- the port layer for the Arm MPS2 AN386 (Cortex-M4): CMSDK APB UART0
 * for the protocol, a cost counter, RAM figures.
 *
 * Cost counter (ETP_COUNTER_SRC):
 *   1 (default, QEMU): SysTick on the 25 MHz CPU clock, extended to 32 bits by its
 *     wrap interrupt. Under `qemu-system-arm -icount shift=S` every instruction advances
 *     virtual time by 2^S ns, so one 40 ns tick = 40 / 2^S instructions: the counter
 *     counts retired instructions in units of ETP_COUNTER_RES = 40 >> S (S = ETP_ICOUNT_SHIFT,
 *     which deploy/build.py passes both here and to QEMU).
 *   2 (a real board): DWT CYCCNT, CPU cycles (QEMU does not model the DWT).
 *
 * Flash for the weight store (ETP_FLASH_SEMIHOST=1, the qemu target): a simulated NOR of
 * ETP_FLASH_SIZE bytes kept in a file of the host through Arm semihosting (QEMU's
 * -semihosting-config enable=on,target=native,arg=...: the command line names the file,
 * "flash=PATH", and optionally a power cut, "cut=N mode=torn|after", as the host port's
 * environment does). Erase writes 0xFF, program ANDs (bits only go 1 -> 0); a torn
 * operation writes pseudo-random bytes; a cut ends QEMU with SYS_EXIT. No RAM is used for it.
 * Without ETP_FLASH_SEMIHOST (a real MPS2: its SSRAM keeps nothing) port_flash_size() is 0
 * and the store reports ESIZE; a board with flash implements these four functions on its
 * flash controller (docs/deploy.md). */
#include <stdint.h>
#include "etp_port.h"
#include "etp_proto.h"

#ifndef ETP_COUNTER_SRC
#define ETP_COUNTER_SRC 1
#endif
#ifndef ETP_ICOUNT_SHIFT
#define ETP_ICOUNT_SHIFT 3
#endif
#ifndef ETP_UART_BAUD
#define ETP_UART_BAUD 115200u
#endif
#define SYSCLK_HZ 25000000u

#define REG(a) (*(volatile uint32_t *)(a))
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00)
#define UART_STATE REG(UART0 + 0x04)   /* bit0 TX full, bit1 RX full */
#define UART_CTRL REG(UART0 + 0x08)    /* bit0 TX enable, bit1 RX enable */
#define UART_INTSTATUS REG(UART0 + 0x0C) /* write 1 to clear: bit1 RX */
#define UART_BAUDDIV REG(UART0 + 0x10)
#define NVIC_ISER0 REG(0xE000E100u)
#define UART0_RX_IRQ 0u                    /* mps2-an386: UART 0 RX is IRQ 0 */
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
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
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
 * arrives or idle_ms have passed on the 25 MHz core clock (SysTick or DWT, whichever
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
    return (uint16_t)(40u >> ETP_ICOUNT_SHIFT);
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
    return "mps2-an386 (qemu)";
#else
    return "mps2-an386";
#endif
}

/* ------------------------------------------------------------------ flash */
#if ETP_FLASH_SEMIHOST
#define SYS_OPEN 0x01
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_SEEK 0x0A
#define SYS_FLEN 0x0C
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ETP_SEMIHOST_CMDLINE 256            /* the flash path must fit (deploy/targets.py checks) */

static int semihost(int op, void *arg) {
    register int r0 __asm("r0") = op;
    register void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static int flash_fd = -2;              /* -2: not opened yet, -1: no file */
static int32_t cut_at = -1, flash_ops;
static int cut_torn = 1;
static uint32_t cut_rng;

/* The value of "key" in the semihosting command line, NUL-terminated in place (or 0). */
static char *arg_value(char *cmd, const char *key) {
    for (char *p = cmd; *p; p++) {
        if (p != cmd && p[-1] != ' ') continue;
        const char *k = key;
        char *q = p;
        while (*k && *q == *k) { q++; k++; }
        if (!*k) return q;
    }
    return 0;
}

static int32_t parse_int(const char *p) {
    int32_t v = 0;
    while (p && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    return v;
}

static int sh_rw(int op, uint32_t off, void *buf, uint32_t n) {
    uint32_t seek[2] = {(uint32_t)flash_fd, off};
    uint32_t rw[3] = {(uint32_t)flash_fd, (uint32_t)(uintptr_t)buf, n};
    if (semihost(SYS_SEEK, seek) != 0) return -1;
    return semihost(op, rw) == 0 ? 0 : -1;     /* both return the bytes NOT transferred */
}

/* Once, at the first flash access (the boot): open the file the command line names. Its
 * buffers are on the stack (no static RAM for the simulation: the RAM figures stay the
 * product's). */
static void flash_open(void) {
    if (flash_fd != -2) return;
    flash_fd = -1;
    char cmd[ETP_SEMIHOST_CMDLINE];
    uint32_t cl[2] = {(uint32_t)(uintptr_t)cmd, sizeof cmd - 1};
    if (semihost(SYS_GET_CMDLINE, cl) != 0) return;
    cmd[cl[1] < sizeof cmd ? cl[1] : sizeof cmd - 1] = 0;
    char *path = arg_value(cmd, "flash="), *cut = arg_value(cmd, "cut="), *mode = arg_value(cmd, "mode=");
    if (!path) return;
    if (cut) cut_at = parse_int(cut);
    if (mode && mode[0] == 'a') cut_torn = 0;
    uint32_t n = 0;
    while (path[n] && path[n] != ' ') n++;
    path[n] = 0;                                   /* after reading cut= and mode= */
    cut_rng = 0x9E3779B9u ^ (uint32_t)cut_at;
    uint32_t op[3] = {(uint32_t)(uintptr_t)path, 3 /* "r+b" */, n};
    int fd = semihost(SYS_OPEN, op);
    if (fd < 0) {
        op[1] = 7;                                 /* "w+b": a new, erased flash */
        fd = semihost(SYS_OPEN, op);
        if (fd < 0) return;
    }
    flash_fd = fd;
    uint32_t fl[1] = {(uint32_t)fd};
    int len = semihost(SYS_FLEN, fl);
    uint8_t ff[64];
    for (uint32_t i = 0; i < sizeof ff; i++) ff[i] = 0xFFu;
    for (uint32_t off = len > 0 ? (uint32_t)len : 0u; off < ETP_FLASH_SIZE; off += sizeof ff) {
        uint32_t k = ETP_FLASH_SIZE - off < sizeof ff ? ETP_FLASH_SIZE - off : sizeof ff;
        if (sh_rw(SYS_WRITE, off, ff, k)) { flash_fd = -1; return; }
    }
}

static void power_off(void) {
    semihost(SYS_EXIT, (void *)ADP_STOPPED_APPLICATION_EXIT);
    for (;;) { }
}

/* write n bytes of src (or of 0xFF when src is 0) at off, as a torn cut or not */
static int flash_write(uint32_t off, const uint8_t *src, uint32_t n, int and_mode) {
    uint8_t buf[64];
    int torn = flash_ops == cut_at && cut_torn;
    for (uint32_t i = 0; i < n; i += sizeof buf) {
        uint32_t k = n - i < sizeof buf ? n - i : sizeof buf;
        if (and_mode && sh_rw(SYS_READ, off + i, buf, k)) return -1;
        for (uint32_t j = 0; j < k; j++) {
            if (torn) {
                cut_rng ^= cut_rng << 13; cut_rng ^= cut_rng >> 17; cut_rng ^= cut_rng << 5;
                buf[j] = (uint8_t)cut_rng;
            } else {
                buf[j] = and_mode ? (uint8_t)(buf[j] & src[i + j]) : 0xFFu;
            }
        }
        if (sh_rw(SYS_WRITE, off + i, buf, k)) return -1;
    }
    if (torn || flash_ops++ == cut_at) power_off();
    return 0;
}

uint32_t port_flash_size(void) {
    flash_open();
    return flash_fd >= 0 ? ETP_FLASH_SIZE : 0u;
}

int port_flash_read(uint32_t off, uint8_t *dst, uint32_t n) {
    if (!port_flash_size() || off > ETP_FLASH_SIZE || n > ETP_FLASH_SIZE - off) return -1;
    return sh_rw(SYS_READ, off, dst, n);
}

int port_flash_erase(uint32_t off) {
    if (!port_flash_size() || off % ETP_FLASH_PAGE || off > ETP_FLASH_SIZE - ETP_FLASH_PAGE) return -1;
    return flash_write(off, 0, ETP_FLASH_PAGE, 0);
}

int port_flash_program(uint32_t off, const uint8_t *src, uint32_t n) {
    if (!port_flash_size() || n != ETP_FLASH_PROG || off % ETP_FLASH_PROG || off > ETP_FLASH_SIZE - n) return -1;
    return flash_write(off, src, n, 1);
}
#else
uint32_t port_flash_size(void) { return 0; }
int port_flash_read(uint32_t off, uint8_t *dst, uint32_t n) { (void)off; (void)dst; (void)n; return -1; }
int port_flash_erase(uint32_t off) { (void)off; return -1; }
int port_flash_program(uint32_t off, const uint8_t *src, uint32_t n) { (void)off; (void)src; (void)n; return -1; }
#endif
