/* Two wrappers for one function (class 0, so neither outranks the other): the first found is
 * used and the conflict is reported. */
#include <stdio.h>
#include <valgrind/valgrind.h>

__attribute__((noinline)) int foo(int x) { return x + 1; }

int I_WRAP_SONAME_FNNAME_ZU(NONE, foo)(int x) {
    int r;
    OrigFn fn;
    VALGRIND_GET_ORIG_FN(fn);
    CALL_FN_W_W(r, fn, x);
    printf("first wrapper: %d\n", r);
    return r;
}

int I_WRAP_SONAME_FNNAME_ZZ(NONE, foo)(int x) {
    int r;
    OrigFn fn;
    VALGRIND_GET_ORIG_FN(fn);
    CALL_FN_W_W(r, fn, x);
    printf("second wrapper: %d\n", r);
    return r;
}

int main(void) {
    printf("foo(1) = %d\n", foo(1));
    return 0;
}
