/* Memcheck: a custom allocator over a static arena, annotated with MALLOCLIKE_BLOCK,
   FREELIKE_BLOCK and RESIZEINPLACE_BLOCK (overrun, shrink, use after free, double free,
   free() of a custom block, a leaked custom block), and a user-described block
   (CREATE_BLOCK, DISCARD). */
#include <stdio.h>
#include <stdlib.h>
#include <valgrind/memcheck.h>

#define RZ 16
static char arena[4096] __attribute__((aligned(16)));
static size_t used;

static char *my_alloc(size_t n) {
    char *p = arena + used + RZ;
    used += (n + 2 * RZ + 15) & ~(size_t)15;
    VALGRIND_MALLOCLIKE_BLOCK(p, n, RZ, 0); /* MALLOCLIKE */
    return p;
}

static void my_free(char *p) {
    VALGRIND_FREELIKE_BLOCK(p, RZ); /* FREELIKE */
}

static void leak_one(void) {
    my_alloc(40); /* LEAK */
}

int main(void) {
    VALGRIND_MAKE_MEM_NOACCESS(arena, sizeof arena);
    char *a = my_alloc(24); /* ALLOC_A */
    a[0] = 'x';
    a[24] = 1; /* OVERRUN */
    VALGRIND_RESIZEINPLACE_BLOCK(a, 24, 8, RZ);
    a[10] = 1; /* SHRUNK */
    VALGRIND_RESIZEINPLACE_BLOCK(a, 8, 12, RZ);
    a[11] = 2;
    VALGRIND_RESIZEINPLACE_BLOCK(a, 99, 12, RZ); /* BADRESIZE */
    my_free(a); /* FREE_A */
    char c = a[1]; /* UAF */
    my_free(a); /* DOUBLE */
    char *b = my_alloc(8); /* ALLOC_B */
    free(b); /* MISMATCH */
    leak_one(); /* LEAK_CALL */

    char *t = malloc(64); /* TABLE */
    int blk = VALGRIND_CREATE_BLOCK(t + 16, 32, "lookup table"); /* CREATE */
    VALGRIND_MAKE_MEM_NOACCESS(t + 40, 8);
    c += t[44]; /* DESCRIBED */
    int d1 = VALGRIND_DISCARD(blk);
    int d2 = VALGRIND_DISCARD(blk);
    c += t[45]; /* UNDESCRIBED */
    int none = VALGRIND_CREATE_BLOCK(t, 0, "empty");
    printf("blocks %d %d %d %d\n", blk, d1, d2, none);
    free(t);
    return c == 42;
}
