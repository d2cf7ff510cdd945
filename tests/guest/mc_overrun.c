/* Memcheck: one heap overrun (a 10-int block written at index 10). */
#include <stdlib.h>

int main(void) {
    int *a = malloc(10 * sizeof(int)); /* ALLOC */
    a[10] = 1; /* OVERRUN */
    free(a);
    return 0;
}
