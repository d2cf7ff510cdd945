/* Bench: an n-body-like integer simulation (fixed-point positions and velocities, pairwise
 * forces with integer division) for argv[1] steps over 32 bodies. Multiplies, divides,
 * branches and array accesses in a tight loop. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 32

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 1000;
    int64_t x[N], y[N], vx[N], vy[N], m[N];
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (int64_t)(s >> 40) - (1 << 23);
        y[i] = (int64_t)((s >> 16) & 0xffffff) - (1 << 23);
        vx[i] = vy[i] = 0;
        m[i] = 1 + (int64_t)(s & 1023);
    }
    for (long t = 0; t < steps; t++) {
        for (int i = 0; i < N; i++) {
            int64_t ax = 0, ay = 0;
            for (int j = 0; j < N; j++) {
                if (j == i)
                    continue;
                int64_t dx = x[j] - x[i], dy = y[j] - y[i];
                int64_t d2 = (dx >> 8) * (dx >> 8) + (dy >> 8) * (dy >> 8) + 4096;
                ax += dx * m[j] / d2;
                ay += dy * m[j] / d2;
            }
            vx[i] += ax;
            vy[i] += ay;
        }
        for (int i = 0; i < N; i++) {
            x[i] += vx[i] >> 4;
            y[i] += vy[i] >> 4;
        }
    }
    int64_t cx = 0, cy = 0;
    uint64_t h = 0;
    for (int i = 0; i < N; i++) {
        cx += x[i];
        cy += y[i];
        h = h * 31 + (uint64_t)x[i] * 7 + (uint64_t)y[i];
    }
    printf("steps=%ld centre=(%lld,%lld) hash=%016llx\n", steps, (long long)(cx / N), (long long)(cy / N),
           (unsigned long long)h);
    return 0;
}
