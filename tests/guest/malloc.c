/* Allocation-heavy work: many mallocs/frees/reallocs of varied sizes (small bins, large bins
 * and mmap'd chunks), a linked list and a chained hash table. Every block is checked by
 * content, never by address, so the output is deterministic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t seed = 12345;
static uint32_t rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}

struct node {
    struct node *next;
    long value;
    char tag[12];
};

struct entry {
    struct entry *next;
    char *key;
    long count;
};

#define NBUCKETS 1021
static struct entry *table[NBUCKETS];

static unsigned hash(const char *s)
{
    unsigned h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % NBUCKETS;
}

static void table_add(const char *key)
{
    unsigned h = hash(key);
    for (struct entry *e = table[h]; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            e->count++;
            return;
        }
    struct entry *e = malloc(sizeof *e);
    e->key = strdup(key);
    e->count = 1;
    e->next = table[h];
    table[h] = e;
}

#define SLOTS 512

int main(void)
{
    /* Random churn over a set of slots. */
    static unsigned char *slot[SLOTS];
    static size_t len[SLOTS];
    unsigned long bad = 0, live_bytes = 0, ops = 0;
    for (int round = 0; round < 40000; round++) {
        int i = (int)(rnd() % SLOTS);
        uint32_t kind = rnd() % 10;
        size_t want = kind < 6 ? rnd() % 64 : kind < 9 ? rnd() % 4096 : 100000 + rnd() % 300000;
        if (slot[i] == NULL) {
            slot[i] = malloc(want + 1);
            len[i] = want + 1;
            memset(slot[i], (int)(i & 0xff), len[i]);
        } else if (rnd() % 3 == 0) {
            for (size_t k = 0; k < len[i]; k++)
                bad += slot[i][k] != (unsigned char)(i & 0xff);
            free(slot[i]);
            slot[i] = NULL;
        } else {
            size_t keep = len[i] < want + 1 ? len[i] : want + 1;
            slot[i] = realloc(slot[i], want + 1);
            for (size_t k = 0; k < keep; k++)
                bad += slot[i][k] != (unsigned char)(i & 0xff);
            memset(slot[i], (int)(i & 0xff), want + 1);
            len[i] = want + 1;
        }
        ops++;
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i])
            live_bytes += len[i];
        free(slot[i]);
    }
    printf("churn: ops=%lu bad=%lu live_bytes_at_end=%lu\n", ops, bad, live_bytes);

    /* calloc must give zeroed memory, even when recycling dirty chunks. */
    unsigned long nonzero = 0;
    for (int i = 0; i < 200; i++) {
        size_t n = 1 + rnd() % 5000;
        unsigned char *p = calloc(n, 3);
        for (size_t k = 0; k < n * 3; k++)
            nonzero += p[k] != 0;
        memset(p, 0xff, n * 3);
        free(p);
    }
    printf("calloc: nonzero=%lu\n", nonzero);

    /* A linked list: build, reverse, filter, sum. */
    struct node *head = NULL;
    for (long v = 1; v <= 20000; v++) {
        struct node *n = malloc(sizeof *n);
        n->value = v * v % 9973;
        snprintf(n->tag, sizeof n->tag, "n%ld", v);
        n->next = head;
        head = n;
    }
    struct node *rev = NULL;
    while (head) {
        struct node *n = head;
        head = n->next;
        n->next = rev;
        rev = n;
    }
    long sum = 0, kept = 0;
    struct node **pp = &rev;
    while (*pp) {
        struct node *n = *pp;
        if (n->value % 3 == 0) {
            *pp = n->next;
            free(n);
        } else {
            sum += n->value;
            kept++;
            pp = &n->next;
        }
    }
    printf("list: kept=%ld sum=%ld first=%s\n", kept, sum, rev ? rev->tag : "-");
    while (rev) {
        struct node *n = rev;
        rev = n->next;
        free(n);
    }

    /* A hash table of word counts. */
    char word[16];
    for (int i = 0; i < 50000; i++) {
        int l = 1 + (int)(rnd() % 3);
        for (int k = 0; k < l; k++)
            word[k] = (char)('a' + rnd() % 12);
        word[l] = 0;
        table_add(word);
    }
    long distinct = 0, total = 0, best = 0;
    char bestkey[16] = "";
    for (int b = 0; b < NBUCKETS; b++)
        for (struct entry *e = table[b]; e; e = e->next) {
            distinct++;
            total += e->count;
            if (e->count > best || (e->count == best && strcmp(e->key, bestkey) < 0)) {
                best = e->count;
                strcpy(bestkey, e->key);
            }
        }
    printf("table: distinct=%ld total=%ld most=%s x%ld\n", distinct, total, bestkey, best);
    for (int b = 0; b < NBUCKETS; b++)
        while (table[b]) {
            struct entry *e = table[b];
            table[b] = e->next;
            free(e->key);
            free(e);
        }
    return 0;
}
