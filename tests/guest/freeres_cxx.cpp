// Memory the C++ library keeps until exit (its emergency exception pool, allocated at start-up)
// and the C library's stdout buffer; exit status 2.
#include <iostream>

int main() {
    std::cout << "hello from C++" << std::endl;
    return 2;
}
