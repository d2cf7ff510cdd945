/* Bench: sort argv[1] pseudo-random 64-bit keys with a hand-written merge sort and with
 * qsort (indirect calls to a comparator), argv[2] rounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void merge_sort(uint64_t *a, uint64_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(a, tmp, h);
    merge_sort(a + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static int cmp(const void *p, const void *q)
{
    uint64_t a = *(const uint64_t *)p, b = *(const uint64_t *)q;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    int rounds = argc > 2 ? atoi(argv[2]) : 1;
    uint64_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *tmp = malloc(n * sizeof *tmp);
    uint64_t s = 1, h = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            a[i] = b[i] = s;
        }
        merge_sort(a, tmp, n);
        qsort(b, n, sizeof *b, cmp);
        for (size_t i = 0; i < n; i++)
            if (a[i] != b[i] || (i > 0 && a[i - 1] > a[i])) {
                printf("mismatch at %zu\n", i);
                return 1;
            }
        h = h * 1000003 + a[n / 3];
    }
    printf("n=%zu rounds=%d min=%016llx max=%016llx h=%016llx\n", n, rounds, (unsigned long long)a[0],
           (unsigned long long)a[n - 1], (unsigned long long)h);
    free(a);
    free(b);
    free(tmp);
    return 0;
}
