/* Memcheck expected-output test: leaks of every kind, with known sizes.
 * Still reachable: 100 bytes in 1 block (a global points to its start).
 * Definitely lost: 48 bytes in 2 blocks (16 + 32, no pointer left).
 * Indirectly lost: 80 bytes in 2 blocks (reached only from a definitely lost block).
 * Possibly lost: 64 bytes in 1 block (a global points into its middle). */
#include <stdlib.h>

void *keep;
char *middle;

__attribute__((noinline)) static void lose_list(void) {
    void **head = malloc(16);
    head[0] = malloc(40);
    head[1] = malloc(40);
}

__attribute__((noinline)) static void lose_plain(void) {
    char *p = malloc(32);
    p[0] = 0;
}

__attribute__((noinline)) static void half_lose(void) {
    middle = (char *)malloc(64) + 24;
}

int main(void) {
    keep = malloc(100);
    lose_list();
    lose_plain();
    half_lose();
    return 0;
}
