/* Memcheck expected-output test: malloc of a negative size (a fishy argument). */
#include <stdlib.h>

int main(void) {
    volatile long n = -16;
    void *p = malloc(n);
    return p != NULL;
}
