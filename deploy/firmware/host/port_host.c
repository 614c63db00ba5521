/* port_host.c -- the native (POSIX) port: serves the protocol on a pseudo-terminal.
 *
 * Prints "etp-host: serving on /dev/pts/N" and waits for bytes on the pty master.
 * The slave side is opened here too and set raw, so the line discipline never
 * rewrites bytes whoever connects first. SIGUSR1 emulates a device reset: the process
 * re-executes itself (all RAM state is new, as after a real reset) on the same pty.
 * port_getc waits with poll(), at most the idle timeout while a frame is partial.
 * Cost counter: CLOCK_MONOTONIC nanoseconds. */
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
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include "etp_port.h"
#include "etp_proto.h"

static int master = -1, slave = -1;
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
    char *args[] = {saved_argv[0], "--pty-fds", mfd, sfd, NULL};
    fflush(NULL);
    execv("/proc/self/exe", args);
    die("re-exec after reset");
}

void port_init(int argc, char **argv) {
    saved_argv = argv;
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive the host that started us */
#endif
    if (argc == 4 && strcmp(argv[1], "--pty-fds") == 0) {
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
        if (n == 0) usleep(1000);
        return -1;
    }
    rx_n = n;
    rx_i = 1;
    return rx[0];
}

void port_write(const uint8_t *p, uint32_t n) {
    while (n) {
        ssize_t k = write(master, p, n);
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
