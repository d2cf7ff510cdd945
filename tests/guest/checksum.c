/* CRC-32 (table-driven, the zlib polynomial) and Adler-32 over a 16 MiB buffer filled by an
 * xorshift generator, plus the CRC of a known string ("123456789" -> cbf43926). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t adler32(const unsigned char *p, size_t n)
{
    uint32_t a = 1, b = 0;
    while (n) {
        size_t chunk = n < 5552 ? n : 5552;
        n -= chunk;
        while (chunk--) {
            a += *p++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return b << 16 | a;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
    size_t n = mib << 20;
    unsigned char *buf = malloc(n);
    if (!buf) {
        printf("malloc failed\n");
        return 1;
    }
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    crc_init();
    printf("crc32(\"123456789\") = %08x\n", crc32(0, (const unsigned char *)"123456789", 9));
    printf("size = %zu MiB\n", mib);
    printf("crc32   = %08x\n", crc32(0, buf, n));
    printf("adler32 = %08x\n", adler32(buf, n));
    uint32_t c = 0;
    for (size_t off = 0; off < n; off += n / 16)
        c = crc32(c, buf + off, 4096);
    printf("crc32 of sixteen 4 KiB slices = %08x\n", c);
    free(buf);
    return 0;
}
