/* Memcheck: a call or a return leaves the 128-byte red zone below the stack pointer undefined.
 * `fill` and `peek` are leaf functions: at -O0 their locals live in the red zone, in the same
 * bytes, without any frame allocation moving the stack pointer over them. `fill` writes its
 * array; `peek`, called next, tests an element of its own array that it never wrote. The bytes
 * hold fill's values, but the return from fill and the call to peek make them undefined, so the
 * test is a known error (Valgrind reports it; a tool that only follows stack-pointer moves sees
 * defined bytes and stays silent). The program's output does not depend on the value read. */
#include <stdio.h>

__attribute__((noinline)) static int fill(int v) {
    volatile int a[8];
    for (int i = 0; i < 8; i++)
        a[i] = v + i;
    return a[3];
}

__attribute__((noinline)) static int peek(void) { /* PEEK-FRAME */
    volatile int b[8];
    if (b[3] == 12345) /* PEEK-COND */
        return 1;
    return 0;
}

int main(void) {
    int r = fill(3);
    r += peek();
    printf("done %d\n", r >= 6);
    return 0;
}
