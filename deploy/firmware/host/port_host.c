/* port_host.c -- the native (POSIX) port: serves the protocol on a pseudo-terminal.
 *
 * Prints "etp-host: serving on /dev/pts/N" and waits for bytes on the pty master.
 * The slave side is opened here too and set raw, so the line discipline never
 * rewrites bytes whoever connects first. SIGUSR1 emulates a device reset: the process
 * re-executes itself (all RAM state is new, as after a real reset) on the same pty.
 * port_getc waits with poll(), at most the idle timeout while a frame is partial.
 * Cost counter: CLOCK_MONOTONIC nanoseconds.
 *
 * `--stdio`: the link is stdin/stdout instead (pipes; verify-c, deploy/targets.py PipeTarget):
 * no banner, and the end of stdin ends the process with status 0, so that a sanitizer build
 * runs its exit checks (leaks) and its status tells the host whether they passed.
 *
 * Flash (the weight store's): a simulated NOR of ETP_FLASH_SIZE bytes - erase sets a page of
 * ETP_FLASH_PAGE bytes to 0xFF, program (ETP_FLASH_PROG bytes, aligned) can only clear bits -
 * backed by the file $ETP_FLASH_FILE (created erased; without it the flash is in RAM and
 * starts erased). Every operation is written through with pwrite, so the file is the flash
 * whenever the process dies. Power cuts for the store's sweep: $ETP_FLASH_CUT = N cuts the
 * power at the N-th erase/program operation since the process started (0-based):
 * $ETP_FLASH_CUT_MODE "torn" (default) leaves the bytes that operation touches random
 * (seeded by $ETP_FLASH_SEED, default N), "after" lets it complete; then the process exits
 * at once with status 75, as a board loses power. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include "etp_port.h"
#include "etp_proto.h"

static int master = -1, slave = -1, out = -1;   /* read from master, write to out */
static int stdio_link;
static char **saved_argv;
static volatile sig_atomic_t reset_requested;
static uint8_t rx[512];
static ssize_t rx_n, rx_i;

static void on_usr1(int sig) { (void)sig; reset_requested = 1; }

static void die(const char *what) {
    fprintf(stderr, "etp-host: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void reexec(void) {
    char mfd[16], sfd[16];
    snprintf(mfd, sizeof mfd, "%d", master);
    snprintf(sfd, sizeof sfd, "%d", slave);
    char *args[] = {saved_argv[0], stdio_link ? "--stdio" : "--pty-fds", mfd, sfd, NULL};
    if (stdio_link) args[2] = NULL;
    fflush(NULL);
    execv("/proc/self/exe", args);
    die("re-exec after reset");
}

void port_init(int argc, char **argv) {
    saved_argv = argv;
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive the host that started us */
#endif
    if (argc == 2 && strcmp(argv[1], "--stdio") == 0) {
        stdio_link = 1;
        master = STDIN_FILENO;
        out = STDOUT_FILENO;
    } else if (argc == 4 && strcmp(argv[1], "--pty-fds") == 0) {
        master = atoi(argv[2]);
        slave = atoi(argv[3]);
        printf("etp-host: reset, serving again\n");
    } else {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) || unlockpt(master)) die("posix_openpt");
        const char *name = ptsname(master);
        if (!name) die("ptsname");
        slave = open(name, O_RDWR | O_NOCTTY);
        if (slave < 0) die("open pty slave");
        struct termios t;
        if (tcgetattr(slave, &t)) die("tcgetattr");
        cfmakeraw(&t);
        if (tcsetattr(slave, TCSANOW, &t)) die("tcsetattr");
        printf("etp-host: serving on %s\n", name);
    }
    if (out < 0) out = master;
    fflush(stdout);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;          /* no SA_RESTART: a blocked read returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
}

int port_getc(uint32_t idle_ms) {
    if (reset_requested) reexec();
    if (rx_i < rx_n) return rx[rx_i++];
    struct pollfd pfd = {master, POLLIN, 0};
    int r = poll(&pfd, 1, idle_ms ? (int)idle_ms : -1);
    if (r <= 0) {
        if (r < 0 && errno != EINTR) die("poll");
        return -1;                     /* the idle timeout (or a signal) */
    }
    ssize_t n = read(master, rx, sizeof rx);
    if (n <= 0) {
        if (n < 0 && errno != EINTR && errno != EAGAIN) die("read");
        if (n == 0 && stdio_link) exit(0);   /* the host closed the link */
        if (n == 0) usleep(1000);
        return -1;
    }
    rx_n = n;
    rx_i = 1;
    return rx[0];
}

void port_write(const uint8_t *p, uint32_t n) {
    while (n) {
        ssize_t k = write(out, p, n);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            die("write");
        }
        p += k;
        n -= (uint32_t)k;
    }
}

uint32_t port_counter_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}
uint8_t port_counter_kind(void) { return ETP_COUNTER_NANOSECONDS; }
uint16_t port_counter_res(void) { return 1; }
void port_ram(uint32_t *static_bytes, uint32_t *stack_size, uint32_t *stack_used) {
    *static_bytes = 0; *stack_size = 0; *stack_used = 0;   /* see the Cortex-M4 build */
}
const char *port_board(void) { return "host-pty"; }

/* ------------------------------------------------------------------ simulated NOR flash */
static uint8_t *flash;
static int flash_fd = -1;
static long flash_ops, cut_at = -1;
static int cut_torn = 1;
static uint64_t cut_rng;

static void flash_fail(const char *what, uint32_t off, uint32_t n) {
    fprintf(stderr, "etp-host: flash: %s at offset %u (%u bytes)\n", what, off, n);
}

static void flash_open(void) {
    if (flash || ETP_FLASH_SIZE == 0) return;
    flash = malloc(ETP_FLASH_SIZE);
    if (!flash) die("flash: malloc");
    memset(flash, 0xFF, ETP_FLASH_SIZE);
    const char *path = getenv("ETP_FLASH_FILE"), *cut = getenv("ETP_FLASH_CUT");
    const char *mode = getenv("ETP_FLASH_CUT_MODE"), *seed = getenv("ETP_FLASH_SEED");
    if (cut && *cut) cut_at = atol(cut);
    if (mode && strcmp(mode, "after") == 0) cut_torn = 0;
    cut_rng = (seed && *seed ? strtoull(seed, NULL, 0) : (uint64_t)cut_at) * 0x9E3779B97F4A7C15ull + 1u;
    if (!path || !*path) return;
    flash_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (flash_fd < 0) die("flash: open $ETP_FLASH_FILE");
    ssize_t got = pread(flash_fd, flash, ETP_FLASH_SIZE, 0);
    if (got < 0) die("flash: read $ETP_FLASH_FILE");
    if ((size_t)got < ETP_FLASH_SIZE &&     /* a new (or shorter) file: the rest is erased */
        pwrite(flash_fd, flash + got, ETP_FLASH_SIZE - (size_t)got, got) != (ssize_t)(ETP_FLASH_SIZE - (size_t)got))
        die("flash: extend $ETP_FLASH_FILE");
}

static void flash_sync(uint32_t off, uint32_t n) {
    if (flash_fd >= 0 && pwrite(flash_fd, flash + off, n, off) != (ssize_t)n) die("flash: write $ETP_FLASH_FILE");
}

/* Before an operation on [off, off + n): a torn cut randomises those bytes and dies. */
static void flash_cut_before(uint32_t off, uint32_t n) {
    if (flash_ops != cut_at || !cut_torn) return;
    for (uint32_t i = 0; i < n; i++) {
        cut_rng ^= cut_rng << 13; cut_rng ^= cut_rng >> 7; cut_rng ^= cut_rng << 17;
        flash[off + i] = (uint8_t)(cut_rng >> 24);
    }
    flash_sync(off, n);
    fprintf(stderr, "etp-host: power cut during flash operation %ld (torn)\n", flash_ops);
    _exit(75);
}

static void flash_cut_after(void) {
    if (flash_ops++ != cut_at) return;
    fprintf(stderr, "etp-host: power cut after flash operation %ld\n", flash_ops - 1);
    _exit(75);
}

uint32_t port_flash_size(void) { return ETP_FLASH_SIZE; }

int port_flash_read(uint32_t off, uint8_t *dst, uint32_t n) {
    flash_open();
    if (!flash || off > ETP_FLASH_SIZE || n > ETP_FLASH_SIZE - off) { flash_fail("read out of range", off, n); return -1; }
    memcpy(dst, flash + off, n);
    return 0;
}

int port_flash_erase(uint32_t off) {
    flash_open();
    if (!flash || off % ETP_FLASH_PAGE || off > ETP_FLASH_SIZE - ETP_FLASH_PAGE) {
        flash_fail("erase not of a whole page", off, ETP_FLASH_PAGE);
        return -1;
    }
    flash_cut_before(off, ETP_FLASH_PAGE);
    memset(flash + off, 0xFF, ETP_FLASH_PAGE);
    flash_sync(off, ETP_FLASH_PAGE);
    flash_cut_after();
    return 0;
}

int port_flash_program(uint32_t off, const uint8_t *src, uint32_t n) {
    flash_open();
    if (!flash || n != ETP_FLASH_PROG || off % ETP_FLASH_PROG || off > ETP_FLASH_SIZE - n) {
        flash_fail("program not of one aligned unit", off, n);
        return -1;
    }
    flash_cut_before(off, n);
    for (uint32_t i = 0; i < n; i++) flash[off + i] &= src[i];   /* NOR: bits only go 1 -> 0 */
    flash_sync(off, n);
    flash_cut_after();
    return 0;
}
