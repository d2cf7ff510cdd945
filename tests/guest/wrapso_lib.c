/* The shared library of the wrapso test: foo lives here, its wrapper in the executable. */
int foo(int x, int y) { return x * 10 + y; }
