/* Memcheck --track-origins=yes: undefined values whose origins are a heap allocation, a stack
 * allocation (a local passed down and tested by a callee), bytes written by write(), a client
 * request, and an undefined array index used in an address. Each use is a known error; the test
 * checks where each one says the value came from. */
#include <stdlib.h>
#include <unistd.h>
#include <valgrind/memcheck.h>

__attribute__((noinline)) static int big(int v) {
    if (v > 10) /* STACK-COND */
        return 1;
    return 2;
}

__attribute__((noinline)) static int stack_origin(void) { /* STACK-FRAME */
    /* Big enough that local[2] lies below the 128-byte red zone the caller's stack had. */
    int local[64];
    return big(local[2]);
}

__attribute__((noinline)) static void fill(char *p, int n) {
    for (int i = 0; i < n; i++)
        p[i] = 'x';
}

int main(void) {
    int r = 0;

    int *h = malloc(4 * sizeof(int)); /* HEAP-ALLOC */
    if (h[1] == 7) /* HEAP-COND */
        r++;

    r += stack_origin();

    char *buf = malloc(16); /* WRITE-ALLOC */
    fill(buf, 8);
    buf[8] = '\n';
    write(1, buf, 16); /* WRITE */

    int c = 5;
    VALGRIND_MAKE_MEM_UNDEFINED(&c, sizeof c); /* CLIENT-REQ */
    if (c == 3) /* CLIENT-COND */
        r++;
    VALGRIND_CHECK_MEM_IS_DEFINED(&c, sizeof c); /* CLIENT-CHECK */

    static long table[4];
    long *ip = malloc(sizeof(long)); /* INDEX-ALLOC */
    long v = table[*ip & 3]; /* INDEX-USE */

    free(ip);
    free(buf);
    free(h);
    return r == 100 || v == 1;
}
