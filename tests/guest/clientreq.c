/* Client requests of the real valgrind.h: RUNNING_ON_VALGRIND, the printf family (with a
 * backtrace), NON_SIMD_CALL, an unknown request, COUNT_ERRORS, STACK_REGISTER/DEREGISTER,
 * MAP_IP_TO_SRCLOC, DISCARD_TRANSLATIONS and CLO_CHANGE (one static, one dynamic option). Natively every request gives its
 * default, so the program prints what it got and the test knows both answers. */
#include <stdio.h>
#include <string.h>
#include <valgrind/valgrind.h>

static long add3(long tid, long a, long b, long c) { return tid * 1000 + a * 100 + b * 10 + c; }

static char alt_stack[4096];

__attribute__((noinline)) static int where(int n) { /* WHERE-DEF */
    VALGRIND_PRINTF_BACKTRACE("backtrace at depth %d\n", n); /* BT-CALL */
    return n + 1;
}

int main(void) {
    int on = RUNNING_ON_VALGRIND;
    printf("RUNNING_ON_VALGRIND == %d\n", on);
    const char *none = on > 100 ? "never" : NULL;
    VALGRIND_PRINTF("%s %d %u %x %5.2f|%c|%-4d|%04d|%lu|%s\n", "fmt", -7, 7u, 255, 2.5, 'q', 12, 42, 1UL << 40, none);
    VALGRIND_PRINTF("no newline, ");
    VALGRIND_PRINTF("then the rest\n");
    printf("where -> %d\n", where(1)); /* MAIN-CALL */
    printf("call3 = %ld\n", (long)VALGRIND_NON_SIMD_CALL3(add3, 1, 2, 3));
    printf("unknown = %lu\n", (unsigned long)VALGRIND_DO_CLIENT_REQUEST_EXPR(77, 0x12345678, 1, 2, 3, 4, 5));
    printf("errors = %u\n", VALGRIND_COUNT_ERRORS);
    unsigned id = VALGRIND_STACK_REGISTER(alt_stack, alt_stack + sizeof alt_stack);
    printf("stack id = %u\n", id);
    VALGRIND_STACK_DEREGISTER(id);
    char loc[64];
    memset(loc, 'x', sizeof loc);
    VALGRIND_MAP_IP_TO_SRCLOC((void *)where, loc);
    printf("srcloc = %.63s\n", loc[0] == 'x' ? "(untouched)" : loc);
    VALGRIND_DISCARD_TRANSLATIONS((void *)where, 64);
    VALGRIND_CLO_CHANGE("--num-callers=2");
    VALGRIND_CLO_CHANGE("--show-below-main=yes");
    printf("where -> %d\n", where(2)); /* MAIN-CALL-2 */
    return 0;
}
