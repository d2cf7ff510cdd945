/* Memcheck expected-output test: memcpy with overlapping source and destination. With this
 * C library memcpy resolves to the same code as memmove, so Valgrind 3.19 replaces it with
 * its memmove and reports nothing; the expectation follows Valgrind. */
#include <string.h>
#include <unistd.h>

static char buf[64] = "abcdefghijklmnopqrstuvwxyz";

int main(void) {
    volatile size_t n = 20;
    memcpy(buf + 5, buf, n);
    write(1, buf, 27);
    return 0;
}
