/* The manual's wrapping example with foo in a shared library (libwrapso.so) and the wrapper,
 * I_WRAP_SONAME_FNNAME_ZU(libwrapsoZdso, foo), in the main executable. */
#include <stdio.h>
#include <valgrind/valgrind.h>

int foo(int x, int y);

int I_WRAP_SONAME_FNNAME_ZU(libwrapsoZdso, foo)(int x, int y) {
    int result;
    OrigFn fn;
    VALGRIND_GET_ORIG_FN(fn);
    printf("foo's wrapper: args %d %d\n", x, y);
    CALL_FN_W_WW(result, fn, x, y);
    printf("foo's wrapper: result %d\n", result);
    return result;
}

int main(void) {
    printf("foo(3, 4) = %d\n", foo(3, 4));
    return 0;
}
