/* Bench: sieve of Eratosthenes over [0, N) repeated R times (argv: N R). Byte array,
 * strided stores, a counting pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    int reps = argc > 2 ? atoi(argv[2]) : 1;
    unsigned char *composite = malloc(n);
    size_t count = 0;
    for (int r = 0; r < reps; r++) {
        memset(composite, 0, n);
        for (size_t i = 2; i * i < n; i++)
            if (!composite[i])
                for (size_t j = i * i; j < n; j += i)
                    composite[j] = 1;
        count = 0;
        for (size_t i = 2; i < n; i++)
            count += !composite[i];
    }
    printf("primes below %zu: %zu\n", n, count);
    free(composite);
    return 0;
}
