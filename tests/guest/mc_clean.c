/* Memcheck: a correct program (heap, strings, stdio, bitfields, partially defined words):
 * no errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct flags {
    unsigned a : 3;
    unsigned b : 5;
    unsigned c : 1;
};

int main(void) {
    char *s = malloc(64);
    strcpy(s, "hello, memcheck");
    size_t n = strlen(s);
    char *t = realloc(s, 128);
    strcat(t, "!");
    int *v = calloc(100, sizeof(int));
    long sum = 0;
    for (int i = 0; i < 100; i++) {
        v[i] = i * i;
        sum += v[i];
    }
    struct flags f; /* only some bits set: the rest stays undefined */
    f.a = 5;
    f.c = 1;
    int hit = f.a == 5 && f.c;
    printf("%s %zu %ld %d\n", t, n, sum, hit);
    free(v);
    free(t);
    return 0;
}
