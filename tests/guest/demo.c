/* The README's demo guest: an ASCII Mandelbrot set, a prime count and a CRC, so a run under
 * the tool shows floating point, integer loops and table lookups working. It has one bug for
 * memcheck to find: the table of prime counts per 20000 numbers is allocated one entry short,
 * so the last count is written just past the block (harmless natively: the allocator rounds
 * the block up, and the output does not depend on it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    static const char shades[] = " .:-=+*#%@";
    for (int row = 0; row < 24; row++) {
        char line[81];
        for (int col = 0; col < 78; col++) {
            double cr = -2.2 + col * (3.2 / 78), ci = -1.2 + row * (2.4 / 24);
            double zr = 0, zi = 0;
            int it = 0;
            while (it < 200 && zr * zr + zi * zi < 4.0) {
                double t = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = t;
                it++;
            }
            line[col] = it == 200 ? '@' : shades[it % 9];
        }
        line[78] = 0;
        puts(line);
    }
    int primes = 0;
    int *per_block = malloc(9 * sizeof(int)); /* BUG: 10 blocks of 20000 numbers */
    for (int n = 2; n < 200000; n++) {
        int prime = 1;
        for (int d = 2; d * d <= n; d++)
            if (n % d == 0) {
                prime = 0;
                break;
            }
        primes += prime;
        if (n % 20000 == 19999)
            per_block[n / 20000] = primes; /* DEMO-OVERRUN: n / 20000 reaches 9 */
    }
    printf("primes below 100000: %d\n", per_block[4]);
    free(per_block);
    uint32_t crc = 0xffffffffu;
    for (uint32_t i = 0; i < 1000000; i++) {
        crc ^= i & 0xff;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
    }
    printf("primes below 200000: %d\ncrc: %08x\n", primes, ~crc);
    return 0;
}
