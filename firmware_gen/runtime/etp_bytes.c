/*
 * etp_bytes.c - CRC-32, little-endian access and element access (etp_bytes.h).
 */
#include "etp_bytes.h"

/* zlib's CRC-32 four bits at a time: 64 bytes of table instead of 1 KB, two lookups a
 * byte. Entry i is the CRC register after shifting nibble i through the reflected
 * polynomial 0xEDB88320 four times; tests/test_bytes_c.py proves the result equals zlib. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
    0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu, 0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};

uint32_t etp_crc32(uint32_t crc, const uint8_t *p, uint32_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    }
    return ~crc;
}

uint32_t etp_rd16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

uint32_t etp_rd32(const uint8_t *p)
{
    return etp_rd16(p) | (etp_rd16(p + 2) << 16);
}

void etp_wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void etp_wr32(uint8_t *p, uint32_t v)
{
    etp_wr16(p, v);
    etp_wr16(p + 2, v >> 16);
}

void etp_wr_le(uint8_t *p, uint64_t v, uint32_t nbytes)
{
    uint32_t b;
    for (b = 0; b < nbytes; b++) {
        p[b] = (uint8_t)(v >> (8u * b));
    }
}

/* Through the unsigned type of the width: reading an intN_t array as uintN_t is allowed
 * aliasing and gives its two's complement bits. */
uint64_t etp_elem_get(const void *data, uint32_t size, uint32_t k)
{
    switch (size) {
    case 1:
        return ((const uint8_t *)data)[k];
    case 2:
        return ((const uint16_t *)data)[k];
    case 4:
        return ((const uint32_t *)data)[k];
    default:
        return ((const uint64_t *)data)[k];
    }
}

void etp_elem_set(void *data, uint32_t size, uint32_t k, uint64_t bits)
{
    switch (size) {
    case 1:
        ((uint8_t *)data)[k] = (uint8_t)bits;
        break;
    case 2:
        ((uint16_t *)data)[k] = (uint16_t)bits;
        break;
    case 4:
        ((uint32_t *)data)[k] = (uint32_t)bits;
        break;
    default:
        ((uint64_t *)data)[k] = bits;
        break;
    }
}
