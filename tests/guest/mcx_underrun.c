/* Memcheck expected-output test: accesses just before heap blocks (the byte rewritten in place
 * is the allocator's header, so the program still runs natively). */
#include <stdlib.h>

int main(void) {
    int *a = malloc(10 * sizeof(int));
    char *s = malloc(16);
    for (int i = 0; i < 10; i++)
        a[i] = i;
    int v = a[-1];
    s[-1] = s[-1];
    free(s);
    free(a);
    return v == 12345;
}
