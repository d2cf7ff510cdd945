/* Memcheck expected-output test: how stack addresses are described. Locals of main and of
 * a callee freed two calls down, one freed directly (the frame holding each is named with its function's
 * first line), and a local of a returned callee read far below the stack pointer. */
#include <stdlib.h>

static char *far_away;

__attribute__((noinline)) static void release(void *p) {
    free(p);
}

__attribute__((noinline)) static void outer(void) {
    int mine = 1;
    release(&mine);
}

__attribute__((noinline)) static void big_frame(void) {
    volatile char big[600];
    big[0] = 1;
    far_away = (char *)&big[0];
}

__attribute__((noinline)) static int peek(const char *p) {
    return *p;
}

int main(void) {
    int local = 3;
    int array[8] = {0};
    release(&local);
    free(&array[2]);
    outer();
    big_frame();
    int v = peek(far_away);
    return local - 3 + array[0] + (v & 0);
}
