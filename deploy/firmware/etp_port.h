/* etp_port.h -- the port layer: everything board-specific the firmware needs.
 *
 * A port (host/port_host.c, mps2_an386/port_mps2.c, or your board's) implements these
 * few functions; main.c, etp_link.c and etp_server.c are the same on every target.
 */
#ifndef ETP_PORT_H
#define ETP_PORT_H
#include <stdint.h>
#include "etp_flash.h"   /* ETP_FLASH_PAGE, _PROG, _SIZE: generated from firmware_gen/store.py */

void port_init(int argc, char **argv);
/* Next received byte (0..255). idle_ms = 0: wait for it; otherwise wait at most idle_ms
 * milliseconds (the inter-byte idle timeout, ETP_IDLE_TIMEOUT_MS) and return -1 if none
 * came. -1 also when the wait was interrupted. */
int port_getc(uint32_t idle_ms);
/* Send n bytes (returns when they are queued or sent). */
void port_write(const uint8_t *p, uint32_t n);
/* Free-running cost counter in the unit of port_counter_kind() (ETP_COUNTER_*),
 * 1 count = port_counter_res() of that unit; differences are taken modulo 2^32. */
uint32_t port_counter_now(void);
uint8_t port_counter_kind(void);
uint16_t port_counter_res(void);
/* RAM: static data + bss (without the stack), the stack reserved, the stack used so far. */
void port_ram(uint32_t *static_bytes, uint32_t *stack_size, uint32_t *stack_used);
/* A short board name sent in HELLO. */
const char *port_board(void);

/* Flash for the weight store (firmware_gen's etp_store.h declares the same four): offsets
 * relative to the store's area of port_flash_size() bytes; each returns 0 on success.
 * erase: the ETP_FLASH_PAGE bytes at a page-aligned offset become 0xFF; program:
 * ETP_FLASH_PROG bytes at a multiple of ETP_FLASH_PROG, which (NOR) can only clear bits.
 * Page, program unit and size are build parameters (deploy/build.py: -DETP_FLASH_PAGE/PROG/SIZE;
 * the defaults: etp_flash.h).
 * host: a file-backed simulated NOR; qemu: the same over semihosting; a board: its flash
 * controller (docs/deploy.md). A port without flash returns 0 from port_flash_size(). */
int port_flash_read(uint32_t off, uint8_t *dst, uint32_t n);
int port_flash_erase(uint32_t off);
int port_flash_program(uint32_t off, const uint8_t *src, uint32_t n);
uint32_t port_flash_size(void);
#endif
