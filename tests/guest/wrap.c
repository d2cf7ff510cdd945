/* Function wrapping with the real valgrind.h, wrappers in the main executable (soname NONE):
 * the manual's example (a wrapper printing the arguments and result of foo), recursion through
 * a wrapper, and longjmp out of one. Natively the wrappers never run. */
#include <stdio.h>
#include <setjmp.h>
#include <valgrind/valgrind.h>

__attribute__((noinline)) int foo(int x, int y) { return x * 10 + y; }

/* The manual's example: a wrapper for foo in the main executable (soname NONE). */
int I_WRAP_SONAME_FNNAME_ZU(NONE, foo)(int x, int y) {
    int result;
    OrigFn fn;
    VALGRIND_GET_ORIG_FN(fn);
    printf("foo's wrapper: args %d %d\n", x, y);
    CALL_FN_W_WW(result, fn, x, y);
    printf("foo's wrapper: result %d\n", result);
    return result;
}

/* Recursion through a wrapper: every level goes through it. The recursive call goes through a
 * volatile pointer so that no optimisation level turns it into a loop. */
int fact(int n);
static int (*volatile fact_ptr)(int) = fact;
__attribute__((noinline)) int fact(int n) { return n <= 1 ? 1 : n * fact_ptr(n - 1); }
static int fact_depth;
int I_WRAP_SONAME_FNNAME_ZU(NONE, fact)(int n) {
    int r;
    OrigFn fn;
    VALGRIND_GET_ORIG_FN(fn);
    fact_depth++;
    CALL_FN_W_W(r, fn, n);
    printf("fact(%d) = %d at depth %d\n", n, r, fact_depth--);
    return r;
}

/* longjmp out of a wrapper. */
static jmp_buf env;
__attribute__((noinline)) int jumper(int v) { return v + 1; }
int I_WRAP_SONAME_FNNAME_ZU(NONE, jumper)(int v) {
    int r;
    OrigFn fn;
    VALGRIND_GET_ORIG_FN(fn);
    CALL_FN_W_W(r, fn, v);
    printf("jumper's wrapper: original gave %d, jumping\n", r);
    longjmp(env, r);
}

int main(void) {
    printf("foo(3, 4) = %d\n", foo(3, 4));
    printf("fact(4) = %d\n", fact(4));
    int v = setjmp(env);
    if (v == 0) {
        printf("jumper returned %d without its wrapper\n", jumper(41));
    } else {
        printf("back in main with %d\n", v);
    }
    printf("foo(1, 2) = %d\n", foo(1, 2));
    return 0;
}
