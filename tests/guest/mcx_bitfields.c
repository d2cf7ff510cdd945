/* Memcheck expected-output test: bitfields and partially defined words used only through
 * their defined bits, which Memcheck tracks bit by bit: no error. */
#include <stdlib.h>
#include <string.h>

struct flags {
    unsigned ready : 1;
    unsigned mode : 3;
    unsigned spare : 12;
    unsigned count : 16;
};

int main(void) {
    struct flags *f = malloc(sizeof *f);
    f->ready = 1;
    f->mode = 5;
    int hits = 0;
    if (f->ready)
        hits++;
    if (f->mode == 5)
        hits++;

    unsigned *w = malloc(sizeof *w);
    ((unsigned char *)w)[0] = 0x5a;
    if ((*w & 0xff) == 0x5a)
        hits++;
    if ((*w | 0xffffff00u) == 0xffffff5au)
        hits++;
    unsigned shifted = *w << 24;
    if (shifted == 0x5a000000u)
        hits++;

    char name[16];
    strcpy(name, "abc");
    if (strlen(name) == 3)
        hits++;

    free(w);
    free(f);
    return hits != 6;
}
