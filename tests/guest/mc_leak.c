/* Memcheck: leaks of every kind. Kept: one block reachable from a global. Lost: a 40-byte
 * block (definitely), a 24-byte block it points to (indirectly), and a 32-byte block reached
 * only through a pointer into its middle (possibly). */
#include <stdlib.h>

void *keep;
char *middle;

__attribute__((noinline)) static void leak(void) {
    void **lost = malloc(40); /* DEF */
    lost[0] = malloc(24); /* IND */
    middle = (char *)malloc(32) + 8; /* POS */
}

int main(void) {
    keep = malloc(100); /* KEEP */
    leak();
    return 0;
}
