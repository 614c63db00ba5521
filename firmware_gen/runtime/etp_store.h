/*
 * etp_store.h - the power-safe weight store (docs/firmware-api.md; the layout is
 * firmware_gen/store.py, generated into etp_store_cfg.h).
 *
 * Two A/B slots in NOR flash, each a header (magic, format version, generation, length,
 * model hash, CRC-32 over header and payload) and the payload: the persistent tensors
 * (trainable weights, optimizer statistics, step count, settings and PRNG state) as
 * little-endian bytes. A save erases and writes the slot that does not hold the newest
 * state, the header last, so a power cut at any moment leaves the other slot complete;
 * the newest valid slot of this model is loaded at boot.
 *
 * Typical use (deploy/firmware/etp_server.c):
 *     etp_init(0); etp_store_boot();           at power-on: the newest saved state, if any
 *     ... learn ...
 *     etp_store_save();                        after learning (a product calls this)
 *     etp_store_factory_reset();               back to the shipped weights
 */
#ifndef ETP_STORE_H
#define ETP_STORE_H

#include <stdint.h>

#include "etp_store_cfg.h"

typedef struct {
    uint8_t slot;          /* slot loaded at boot or written by the last save; ETP_STORE_NO_SLOT: none */
    uint8_t boot_status;   /* ETP_STORE_OK (a slot was loaded), _EMPTY (shipped weights), _EFLASH, _ESIZE */
    uint8_t valid;         /* bit k: slot k held a valid state of this model at boot */
    uint8_t foreign;       /* bit k: slot k held a valid header of another model or format (ignored) */
    uint32_t generation;   /* generation of that slot (0: none) */
    uint32_t erases;       /* flash operations of the last save or factory reset */
    uint32_t programs;
} etp_store_info_t;

/* After etp_init: load the newest valid slot of this model (if none, the state stays the
 * shipped one). Returns info()->boot_status. */
int etp_store_boot(void);
/* Save the persistent state into the other slot; ETP_STORE_OK once it is complete and
 * read back. On any error the slot loaded before stays the newest valid one. */
int etp_store_save(void);
/* Erase both slots (the one with the older state first) and etp_init(0): the device is
 * then as shipped, also after a restart. */
int etp_store_factory_reset(void);
const etp_store_info_t *etp_store_info(void);
/* Flash the two slots need (bytes), and the flash operations of one save. */
uint32_t etp_store_flash_bytes(void);

/* The flash driver the store uses: implemented by the port layer (deploy/firmware/etp_port.h).
 * Offsets are relative to the store's flash area; each returns 0 on success.
 * erase: the ETP_FLASH_PAGE bytes at a page-aligned offset become 0xFF.
 * program: ETP_FLASH_PROG bytes at a multiple of ETP_FLASH_PROG; NOR: can only clear bits. */
int port_flash_read(uint32_t off, uint8_t *dst, uint32_t n);
int port_flash_erase(uint32_t off);
int port_flash_program(uint32_t off, const uint8_t *src, uint32_t n);
uint32_t port_flash_size(void);

#endif /* ETP_STORE_H */
