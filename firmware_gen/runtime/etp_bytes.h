/*
 * etp_bytes.h - the byte helpers the runtime, the weight store and the firmware's link and
 * server share: CRC-32, little-endian access and tensor element access, written once.
 *
 * Every multi-byte value the device exchanges (state digest, store payload, protocol
 * frames) is little-endian whatever the target's byte order, and every checksum is
 * zlib's CRC-32, so the host checks all of them with zlib.crc32 and struct "<".
 * Plain C99, no target intrinsics: the same unit builds on the host and the Cortex-M4.
 */
#ifndef ETP_BYTES_H
#define ETP_BYTES_H

#include <stdint.h>

/* CRC-32 of zlib (IEEE 802.3: reflected polynomial 0xEDB88320, init and final xor
 * 0xFFFFFFFF), chainable as zlib's: etp_crc32(etp_crc32(0, a, na), b, nb) is the CRC of
 * a then b, equal to zlib.crc32(b, zlib.crc32(a)). Start from 0. */
uint32_t etp_crc32(uint32_t crc, const uint8_t *p, uint32_t n);

/* Little-endian load and store of 16/32-bit values (unaligned p is fine). etp_wr_le stores
 * the low nbytes (1..8) of v, the form of a tensor element on the wire and in flash. */
uint32_t etp_rd16(const uint8_t *p);
uint32_t etp_rd32(const uint8_t *p);
void etp_wr16(uint8_t *p, uint32_t v);
void etp_wr32(uint8_t *p, uint32_t v);
void etp_wr_le(uint8_t *p, uint64_t v, uint32_t nbytes);

/* Element k of an array of size-byte elements (size 1, 2, 4 or 8; etp_tensor_t.data with
 * ETP_DTYPE_SIZES[dtype]) as its raw bits - two's complement for the signed types - and
 * the inverse. Storage order is the target's; callers serialise with etp_wr_le. */
uint64_t etp_elem_get(const void *data, uint32_t size, uint32_t k);
void etp_elem_set(void *data, uint32_t size, uint32_t k, uint64_t bits);

#endif /* ETP_BYTES_H */
