/* Memcheck expected-output test: a write past a stack array stays inside the frame, which
 * Memcheck cannot see: no error. */
__attribute__((noinline)) static int fill(int n) {
    struct {
        int a[4];
        int after[4];
    } s;
    for (int i = 0; i < n; i++)
        s.a[i] = i; /* i >= 4 writes into s.after */
    return s.after[1];
}

int main(void) {
    return fill(6) != 5;
}
