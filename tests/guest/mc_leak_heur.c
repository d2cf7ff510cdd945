/* Memcheck's leak heuristics: blocks held only by pointers 8 bytes into them, laid out as a
 * length-prefixed buffer (first word: the size of the rest; LENGTH64) and as the cookie of a
 * new[] array (first word: an element count dividing the rest; NEWARRAY). With the heuristics
 * they are reachable, without them possibly lost. */
#include <stdlib.h>

char *buffer;
int *array;

int main(void) {
    unsigned long *b = malloc(8 + 40); /* LENGTH64 */
    b[0] = 40;
    buffer = (char *)(b + 1);
    unsigned long *a = malloc(8 + 5 * sizeof(int)); /* NEWARRAY */
    a[0] = 5;
    array = (int *)(a + 1);
    b = a = 0;
    return 0;
}
