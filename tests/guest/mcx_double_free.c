/* Memcheck expected-output test: the same block freed twice. */
#include <stdlib.h>

int main(void) {
    char *p = malloc(24);
    p[0] = 1;
    free(p);
    free(p);
    return 0;
}
