/* Memcheck expected-output test: a program linked against the old memcpy (version
 * GLIBC_2.2.5, a plain function). Valgrind runs it as a memmove named after that version: a
 * copy past a block's end is reported in its name, an overlapping copy is not. */
#include <stdlib.h>
#include <string.h>

__asm__(".symver memcpy, memcpy@GLIBC_2.2.5");

static char buf[64] = "abcdefghijklmnopqrstuvwxyz";

int main(void) {
    char *a = malloc(16), *b = malloc(16);
    memset(a, 1, 16);
    volatile size_t n = 24;
    memcpy(b, a, n);
    memcpy(buf + 5, buf, n - 4);
    free(a);
    free(b);
    return buf[5] != 'a';
}
