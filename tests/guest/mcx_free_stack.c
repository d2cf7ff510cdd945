/* Memcheck expected-output test: free() of the address of a local variable. */
#include <stdlib.h>

__attribute__((noinline)) static void release(void *p) {
    free(p);
}

int main(void) {
    int local = 3;
    release(&local);
    return local - 3;
}
