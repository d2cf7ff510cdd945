// Memcheck expected-output test: blocks released by the wrong family of deallocator.
#include <cstdlib>

struct Pair {
    int a, b;
};

int main() {
    int *one = new int(1);
    free(one);                      // new, then free
    Pair *many = new Pair[4];
    delete many;                    // new[], then delete
    char *raw = static_cast<char *>(malloc(32));
    delete raw;                     // malloc, then delete
    int *single = new int(2);
    delete[] single;                // new, then delete[]
    int *ok = new int[3];
    delete[] ok;                    // matched: no error
    return 0;
}
