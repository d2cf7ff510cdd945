/* Memcheck: a branch on an uninitialised local, and a clean branch on a defined one. */
#include <stdio.h>

__attribute__((noinline)) static int pick(int *p) {
    if (*p > 10) /* COND */
        return 1;
    return 2;
}

int main(void) {
    int x;
    int y = 20;
    int r = pick(&x);
    r += pick(&y);
    printf("%d\n", r > 0);
    return 0;
}
