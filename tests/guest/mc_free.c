/* Memcheck: a use after free, a double free and a free of a non-heap pointer. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    int *p = malloc(16); /* ALLOC */
    p[0] = 5;
    free(p); /* FREE1 */
    int v = p[1]; /* UAF */
    free(p); /* FREE2 */
    int local = 0;
    free(&local); /* FREE3 */
    printf("%d\n", v == 12345);
    return 0;
}
