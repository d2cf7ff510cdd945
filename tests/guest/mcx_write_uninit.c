/* Memcheck expected-output test: a buffer with uninitialised bytes handed to write(). */
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    char *buf = malloc(16);
    for (int i = 0; i < 8; i++)
        buf[i] = 'a' + i;
    buf[15] = '\n';
    write(1, buf, 16);
    free(buf);
    return 0;
}
