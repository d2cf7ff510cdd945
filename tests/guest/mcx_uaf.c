/* Memcheck expected-output test: reads and writes of a heap block after it was freed; the
 * report names the block's free and allocation stacks. */
#include <stdlib.h>

struct node {
    long key;
    struct node *next;
};

__attribute__((noinline)) static struct node *make(long key) {
    struct node *n = malloc(sizeof *n);
    n->key = key;
    n->next = NULL;
    return n;
}

__attribute__((noinline)) static void release(struct node *n) {
    free(n);
}

int main(void) {
    struct node *n = make(7);
    release(n);
    long k = n->key;
    n->next = n;
    return k == 12345;
}
