/* Memcheck's leak-check client requests: a full check, counts after it, an added check after
 * one more lost block, a changed check after a lost block was found again, and a quick check.
 * The counts are printed on stdout as "leaked dubious reachable suppressed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/memcheck.h>

void *keep;
void *found;
void *volatile sink;

static void say(const char *what, unsigned long a, unsigned long b, unsigned long c, unsigned long d) {
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s %lu %lu %lu %lu\n", what, a, b, c, d);
    write(1, buf, n);
}

static void counts(void) {
    unsigned long leaked, dubious, reachable, suppressed;
    VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
    say("bytes", leaked, dubious, reachable, suppressed);
    VALGRIND_COUNT_LEAK_BLOCKS(leaked, dubious, reachable, suppressed);
    say("blocks", leaked, dubious, reachable, suppressed);
}

__attribute__((noinline)) static void lose(unsigned long n) {
    sink = malloc(n); /* LOSE */
    sink = 0;
}

int main(void) {
    keep = malloc(64); /* KEEP */
    found = malloc(16); /* FOUND */
    lose(40); /* FIRST */
    VALGRIND_DO_LEAK_CHECK;
    counts();
    lose(40); /* SECOND */
    VALGRIND_DO_ADDED_LEAK_CHECK;
    counts();
    free(found);
    VALGRIND_DO_CHANGED_LEAK_CHECK;
    VALGRIND_DO_QUICK_LEAK_CHECK;
    counts();
    return 0;
}
