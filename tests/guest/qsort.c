/* qsort of a few thousand ints, doubles and strings, checked for order and summarised. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define N 5000

int main(void)
{
    static int ints[N];
    static double dbls[N];
    static char *strs[N];
    for (int i = 0; i < N; i++) {
        ints[i] = (int)(next() % 200001) - 100000;
        dbls[i] = (double)(int64_t)next() / 1e12;
        char buf[24];
        int len = 1 + (int)(next() % 12);
        for (int j = 0; j < len; j++)
            buf[j] = (char)('a' + next() % 26);
        buf[len] = 0;
        strs[i] = strdup(buf);
    }
    qsort(ints, N, sizeof ints[0], cmp_int);
    qsort(dbls, N, sizeof dbls[0], cmp_dbl);
    qsort(strs, N, sizeof strs[0], cmp_str);

    int ok = 1;
    int64_t isum = 0;
    uint64_t shash = 1469598103934665603ULL;
    for (int i = 0; i < N; i++) {
        if (i > 0 && (ints[i - 1] > ints[i] || dbls[i - 1] > dbls[i] || strcmp(strs[i - 1], strs[i]) > 0))
            ok = 0;
        isum += (int64_t)ints[i] * (i + 1);
        for (const char *p = strs[i]; *p; p++)
            shash = (shash ^ (unsigned char)*p) * 1099511628211ULL;
    }
    printf("sorted=%d\n", ok);
    printf("ints: min=%d median=%d max=%d weighted=%lld\n", ints[0], ints[N / 2], ints[N - 1], (long long)isum);
    printf("dbls: min=%.6f median=%.6f max=%.6f\n", dbls[0], dbls[N / 2], dbls[N - 1]);
    printf("strs: first=%s last=%s hash=%016llx\n", strs[0], strs[N - 1], (unsigned long long)shash);
    for (int i = 0; i < N; i += N / 10)
        printf("  [%d] %d %s\n", i, ints[i], strs[i]);
    int key = ints[1234];
    int *found = bsearch(&key, ints, N, sizeof ints[0], cmp_int);
    printf("bsearch %d -> %s\n", key, found && *found == key ? "found" : "missing");
    for (int i = 0; i < N; i++)
        free(strs[i]);
    return 0;
}
