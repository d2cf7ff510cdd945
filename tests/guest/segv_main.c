/* A null store in main, right after a call: the fatal-signal report must name main and the
 * store's line. */
#include <stdio.h>

int main(void) {
    volatile int *p = NULL;
    puts("before the store");
    fflush(stdout);
    *p = 1; /* NULL-STORE */
    return 0;
}
