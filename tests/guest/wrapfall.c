/* Straight-line code running into a wrapped function: fall_into_bar adds 1 to its argument
 * and falls through into bar, whose wrapper must run as for any other entry into bar. */
#include <stdio.h>
#include <valgrind/valgrind.h>

int fall_into_bar(int x);
int bar(int x);
__asm__(".text\n"
        ".globl fall_into_bar\n.type fall_into_bar, @function\n"
        "fall_into_bar:\n\taddl $1, %edi\n"
        ".globl bar\n.type bar, @function\n"
        "bar:\n\tleal 100(%rdi), %eax\n\tret\n");

int I_WRAP_SONAME_FNNAME_ZU(NONE, bar)(int x) {
    int r;
    OrigFn fn;
    VALGRIND_GET_ORIG_FN(fn);
    CALL_FN_W_W(r, fn, x);
    printf("bar's wrapper: %d -> %d\n", x, r);
    return r;
}

int main(void) {
    printf("bar(1) = %d\n", bar(1));
    printf("fall_into_bar(1) = %d\n", fall_into_bar(1));
    return 0;
}
