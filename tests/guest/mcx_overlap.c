/* Memcheck expected-output test: strcpy and mempcpy whose source and destination overlap. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

static char buf[64] = "abcdefghijklmnopqrstuvwxyz";
static char str[32] = "overlapping";

int main(void) {
    volatile size_t n = 20;
    strcpy(str, str + 4);
    mempcpy(buf + 3, buf, n);
    write(1, str, 8);
    write(1, buf, 27);
    return 0;
}
