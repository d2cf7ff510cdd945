/* Memcheck: write() of a partly uninitialised heap buffer. */
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    char *buf = malloc(10); /* ALLOC */
    buf[0] = 'a';
    buf[1] = '\n';
    write(1, buf, 10); /* WRITE */
    free(buf);
    return 0;
}
