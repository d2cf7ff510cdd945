/* Memcheck expected-output test: a write of 4 bytes just past a 40-byte heap block. */
#include <stdlib.h>

int main(void) {
    int *a = malloc(10 * sizeof(int));
    for (int i = 0; i < 10; i++)
        a[i] = i;
    a[10] = 10; /* one element too far */
    free(a);
    return 0;
}
