/* Reads stdin to the end (read(2) through stdio) and prints line, word and byte counts and a
 * CRC-like hash, like a tiny wc. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    unsigned long lines = 0, words = 0, bytes = 0;
    uint32_t h = 2166136261u;
    int c, in_word = 0;
    while ((c = getchar()) != EOF) {
        bytes++;
        h = (h ^ (uint32_t)c) * 16777619u;
        if (c == '\n')
            lines++;
        if (isspace(c))
            in_word = 0;
        else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    printf("%lu %lu %lu %08x\n", lines, words, bytes, h);
    return 0;
}
