/* Deep and branchy recursion: fib, Ackermann, Towers of Hanoi, mutual recursion. */
#include <stdio.h>
#include <stdlib.h>

static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static unsigned long ack(unsigned long m, unsigned long n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

static unsigned long moves;
static void hanoi(int n, int from, int to, int via)
{
    if (n == 0)
        return;
    hanoi(n - 1, from, via, to);
    moves += (unsigned long)(from * 3 + to);
    hanoi(n - 1, via, to, from);
}

static int is_odd(unsigned n);
static int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
static int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }

/* Recursion with a large stack frame, so the guest stack grows by several pages. */
static unsigned long deep(int n)
{
    volatile unsigned char frame[512];
    for (int i = 0; i < 512; i++)
        frame[i] = (unsigned char)(n + i);
    if (n == 0)
        return frame[7];
    return deep(n - 1) + frame[n % 512];
}

int main(void)
{
    for (int i = 0; i <= 27; i += 3)
        printf("fib(%d) = %ld\n", i, fib(i));
    for (unsigned long m = 0; m <= 2; m++)
        for (unsigned long n = 0; n <= 6; n += 2)
            printf("ack(%lu,%lu) = %lu\n", m, n, ack(m, n));
    printf("ack(3,6) = %lu\n", ack(3, 6));
    hanoi(18, 1, 3, 2);
    printf("hanoi(18) checksum = %lu\n", moves);
    printf("is_even(10001) = %d, is_odd(7777) = %d\n", is_even(10001), is_odd(7777));
    printf("deep(4000) = %lu\n", deep(4000));
    return 0;
}
