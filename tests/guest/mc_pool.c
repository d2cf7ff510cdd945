/* Memcheck: a memory pool carved from a malloc'd superblock, annotated with the mempool
   requests: chunk overrun, use after MEMPOOL_FREE, a bad MEMPOOL_FREE, an unknown pool,
   TRIM, CHANGE, MOVE, EXISTS, a meta pool with AUTO_FREE, and a leaked chunk (the
   superblock itself is not a leak candidate). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/memcheck.h>

#define RZ 8
struct pool {
    char *buf;
    size_t used;
};

static struct pool P, Q, M;
static char *kept;

static char *pool_alloc(struct pool *p, size_t n) {
    char *c = p->buf + p->used + RZ;
    p->used += (n + 2 * RZ + 7) & ~(size_t)7;
    VALGRIND_MEMPOOL_ALLOC(p, c, n); /* POOL_ALLOC */
    return c;
}

static void pool_init(struct pool *p, size_t size) {
    p->buf = malloc(size); /* SUPER */
    p->used = 0;
    VALGRIND_MAKE_MEM_NOACCESS(p->buf, size);
}

static void leak_chunk(void) {
    pool_alloc(&P, 24); /* LEAK */
}

int main(void) {
    pool_init(&P, 1024); /* INIT_P */
    VALGRIND_CREATE_MEMPOOL(&P, RZ, 0);
    char *a = pool_alloc(&P, 16); /* ALLOC_A */
    char *b = pool_alloc(&P, 32); /* ALLOC_B */
    memset(a, 0, 16);
    a[16] = 1; /* OVERRUN */
    VALGRIND_MEMPOOL_FREE(&P, a); /* FREE_A */
    int v = a[4]; /* UAF */
    VALGRIND_MEMPOOL_FREE(&P, a); /* DOUBLE */
    int bogus;
    VALGRIND_MEMPOOL_ALLOC(&bogus, b, 8); /* ILLEGAL */

    VALGRIND_MEMPOOL_TRIM(&P, b, 8);
    b[7] = 1;
    b[8] = 1; /* TRIMMED */
    VALGRIND_MEMPOOL_CHANGE(&P, b, b, 20);
    VALGRIND_MAKE_MEM_UNDEFINED(b + 8, 12);
    b[19] = 1;
    VALGRIND_MEMPOOL_CHANGE(&P, a, b, 4); /* BADCHANGE */
    kept = pool_alloc(&P, 40); /* KEPT */
    leak_chunk(); /* LEAK_CALL */

    pool_init(&Q, 256);
    VALGRIND_CREATE_MEMPOOL(&Q, RZ, 1);
    char *q = pool_alloc(&Q, 8);
    int e1 = VALGRIND_MEMPOOL_EXISTS(&Q);
    struct pool *moved = malloc(sizeof *moved); /* MOVED */
    *moved = Q;
    VALGRIND_MOVE_MEMPOOL(&Q, moved);
    int e2 = VALGRIND_MEMPOOL_EXISTS(&Q), e3 = VALGRIND_MEMPOOL_EXISTS(moved);
    v += q[0]; /* zeroed pool: defined */
    VALGRIND_DESTROY_MEMPOOL(moved);
    int e4 = VALGRIND_MEMPOOL_EXISTS(moved);
    VALGRIND_DESTROY_MEMPOOL(moved); /* DESTROY2 */
    free(Q.buf);
    free(moved);

    pool_init(&M, 512); /* INIT_M */
    VALGRIND_CREATE_MEMPOOL_EXT(&M, 0, 0, VALGRIND_MEMPOOL_METAPOOL | VALGRIND_MEMPOOL_AUTO_FREE);
    char *big = pool_alloc(&M, 128);
    VALGRIND_MALLOCLIKE_BLOCK(big, 16, 0, 0);
    VALGRIND_MALLOCLIKE_BLOCK(big + 32, 16, 0, 0);
    VALGRIND_MEMPOOL_FREE(&M, big);
    VALGRIND_FREELIKE_BLOCK(big + 32, 0); /* AUTOFREED */
    VALGRIND_DESTROY_MEMPOOL(&M);
    free(M.buf);

    printf("exists %d %d %d %d\n", e1, e2, e3, e4);
    return v == 42;
}
