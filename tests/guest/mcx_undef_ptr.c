/* Memcheck expected-output test: an address computed from an uninitialised value and then
 * dereferenced. Both possible addresses are valid, so the program itself behaves. */
static int table[2] = {10, 20};

__attribute__((noinline)) static int lookup(int *t, int i) {
    int *p = t + (i & 1);
    return *p;
}

int main(void) {
    int i;
    int v = lookup(table, i);
    return v == 12345;
}
