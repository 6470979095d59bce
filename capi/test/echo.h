/* echo.h: what the C test and the C benchmark both build: IPv4 ICMP echo
 * requests from 198.18.7.8 to the adapter's 198.18.7.7. */
#ifndef RINGTUN_TEST_ECHO_H
#define RINGTUN_TEST_ECHO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wintun.h"

/* checksum is the Internet checksum (RFC 1071) of b[0..n). */
static inline uint16_t checksum(const BYTE *b, size_t n)
{
    uint32_t sum = 0;
    for (; n > 1; n -= 2, b += 2)
        sum += (uint32_t)(b[0] << 8 | b[1]);
    if (n)
        sum += (uint32_t)(b[0] << 8);
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

/* make_echo writes an echo request of n bytes (n >= 28), identifier
 * 0x1234, sequence number seq. */
static inline void make_echo(BYTE *p, size_t n, uint16_t seq)
{
    memset(p, 0, n);
    p[0] = 0x45;
    p[2] = (BYTE)(n >> 8), p[3] = (BYTE)n;
    p[8] = 64, p[9] = 1;
    BYTE src[4] = { 198, 18, 7, 8 }, dst[4] = { 198, 18, 7, 7 };
    memcpy(p + 12, src, 4), memcpy(p + 16, dst, 4);
    uint16_t c = checksum(p, 20);
    p[10] = (BYTE)(c >> 8), p[11] = (BYTE)c;
    p[20] = 8;
    p[24] = 0x12, p[25] = 0x34, p[26] = (BYTE)(seq >> 8), p[27] = (BYTE)seq;
    c = checksum(p + 20, n - 20);
    p[22] = (BYTE)(c >> 8), p[23] = (BYTE)c;
}

#endif
