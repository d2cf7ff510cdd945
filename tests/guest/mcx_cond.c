/* Memcheck expected-output test: branches on uninitialised values, in an if and in a
 * switch. */
#include <stdlib.h>

__attribute__((noinline)) static int classify(int v) {
    if (v > 100)
        return 1;
    return 0;
}

__attribute__((noinline)) static const char *name(int v) {
    switch (v) {
    case 0: return "zero";
    case 1: return "one";
    case 2: return "two";
    case 3: return "three";
    case 4: return "four";
    default: return "many";
    }
}

int main(void) {
    int x;
    int *h = malloc(sizeof *h);
    int c = classify(x);
    const char *n = name(*h);
    free(h);
    return c < 0 || n == NULL;
}
