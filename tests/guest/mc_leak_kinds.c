/* Memcheck: every leak kind with known figures. Still reachable: 100 bytes held by a global
 * (KEEP). Definitely lost: the head of a lost three-node list (LIST: 32 bytes direct, its two
 * other nodes 64 bytes indirectly lost) and two 10-byte blocks from one call site (TWICE).
 * Possibly lost: 48 bytes reached only through a pointer into their middle (POS). */
#include <stdlib.h>

struct node {
    struct node *next;
    char pad[24];
};

void *keep;
char *middle;
/* Keeps the compiler from dropping allocations whose result is otherwise unused. */
void *volatile sink;

__attribute__((noinline)) static void lose_list(int n) {
    struct node *head = 0;
    for (int i = 0; i < n; i++) {
        struct node *x = malloc(sizeof *x); /* LIST */
        x->next = head;
        head = x;
    }
    sink = head;
}

__attribute__((noinline)) static void lose_small(void) {
    for (int i = 0; i < 2; i++)
        sink = malloc(10); /* TWICE */
}

int main(void) {
    keep = malloc(100); /* KEEP */
    lose_list(3); /* CALL_LIST */
    lose_small(); /* CALL_SMALL */
    middle = (char *)malloc(48) + 8; /* POS */
    sink = 0;
    return 0;
}
