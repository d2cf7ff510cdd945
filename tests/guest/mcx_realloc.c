/* Memcheck expected-output test: an array grown with realloc from a calloc'd start, used
 * correctly: no error. The printf leaves the C library's stdout buffer allocated until the
 * end-of-run release of the library's own memory, so every block is freed in the summary. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t cap = 4, len = 0;
    long *v = calloc(cap, sizeof *v);
    long sum = v[0] + v[3];
    for (long i = 0; i < 1000; i++) {
        if (len == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
        }
        v[len++] = i;
    }
    for (size_t i = 0; i < len; i++)
        sum += v[i];
    v = realloc(v, 10 * sizeof *v);
    sum += v[9];
    printf("%ld\n", sum);
    free(v);
    return 0;
}
