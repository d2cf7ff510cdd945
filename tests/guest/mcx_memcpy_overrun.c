/* Memcheck expected-output test: memcpy (through its IFUNC) copying a word past the end of
 * two 16-byte blocks. Valgrind runs it as its memmove, copying whole words: one invalid read
 * and one invalid write of size 8, named memmove. */
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *a = malloc(16), *b = malloc(16);
    memset(a, 1, 16);
    volatile size_t n = 24;
    memcpy(b, a, n);
    int r = b[0] != 1;
    free(a);
    free(b);
    return r;
}
