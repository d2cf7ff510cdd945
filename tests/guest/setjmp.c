/* setjmp/longjmp: non-local exits from deep recursion, repeated jumps to one buffer, and
 * values preserved through volatile locals. glibc mangles the saved pointers with a secret
 * read through %fs, so this also exercises TLS. */
#include <setjmp.h>
#include <stdio.h>

static jmp_buf env;
static int calls;

static void dive(int depth, int limit)
{
    calls++;
    if (depth > limit)
        return; /* never taken; keeps gcc from calling this an infinite recursion */
    if (depth == limit)
        longjmp(env, depth * 10 + 1);
    dive(depth + 1, limit);
    printf("never printed\n");
}

static jmp_buf inner;
static int nested(int x)
{
    int r = setjmp(inner);
    if (r == 0) {
        if (x > 5)
            longjmp(inner, x);
        return -x;
    }
    return r * 100;
}

int main(void)
{
    volatile int rounds = 0;
    volatile long acc = 0;
    int r = setjmp(env);
    acc += r;
    if (rounds < 20) {
        rounds++;
        printf("round %d: setjmp returned %d\n", rounds, r);
        dive(0, rounds * 7);
    }
    printf("after %d rounds: acc=%ld calls=%d\n", rounds, acc, calls);
    for (int i = 0; i < 10; i++)
        printf("nested(%d) = %d\n", i, nested(i));
    if (setjmp(env) == 0)
        longjmp(env, 0); /* longjmp with 0 makes setjmp return 1 */
    else
        printf("longjmp(env, 0) made setjmp return non-zero\n");
    return 0;
}
