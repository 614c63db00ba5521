/* semihost_flash.c -- the weight store's flash on an emulated board (every QEMU target):
 * a simulated NOR of ETP_FLASH_SIZE bytes kept in a file of the host through semihosting
 * (QEMU's -semihosting-config enable=on,target=native,arg=...: the command line names the file,
 * "flash=PATH", and optionally a power cut, "cut=N mode=torn|after", as the host port's
 * environment does). Erase writes 0xFF, program ANDs (bits only go 1 -> 0); a torn operation
 * writes pseudo-random bytes; a cut ends QEMU with SYS_EXIT. No RAM is used for it.
 * Without ETP_FLASH_SEMIHOST (a real board: its RAM keeps nothing) port_flash_size() is 0 and
 * the store reports ESIZE; a board with flash implements these four functions on its flash
 * controller (docs/porting.md). */
#include <stdint.h>
#include "etp_port.h"

#if ETP_FLASH_SEMIHOST && ETP_FLASH_SIZE > 0    /* an export without the store: no flash */
#define SYS_OPEN 0x01
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_SEEK 0x0A
#define SYS_FLEN 0x0C
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ETP_SEMIHOST_CMDLINE 256            /* the flash path must fit (deploy/targets.py checks) */

/* One semihosting call: the operation and its parameter block, as the Arm semihosting
 * specification defines them; RISC-V semihosting uses the same numbers and blocks, entered by
 * the uncompressed slli/ebreak/srai sequence QEMU recognises - a function of its own, aligned so
 * that the three instructions share a page and no linker relaxation moves them. */
#if defined(__riscv)
int etp_semihost_trap(int op, void *arg);
__asm__(".section .text.etp_semihost_trap, \"ax\", @progbits\n"
        ".option push\n.option norelax\n.option norvc\n"
        ".balign 16\n"
        ".globl etp_semihost_trap\n"
        "etp_semihost_trap:\n"
        "    slli x0, x0, 0x1f\n    ebreak\n    srai x0, x0, 7\n    ret\n"
        ".option pop\n.text\n");
#endif

static int semihost(int op, void *arg) {
#if defined(__arm__)
    register int r0 __asm("r0") = op;
    register void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
#elif defined(__riscv)
    return etp_semihost_trap(op, arg);
#else
#error "semihosting: an Arm or RISC-V core"
#endif
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
