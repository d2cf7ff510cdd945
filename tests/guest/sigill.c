/* Executes an illegal instruction after printing (and flushing) one line. argv[1] picks it:
 *   "ud2"   - the architected undefined instruction 0f 0b (decodable; raises SIGILL),
 *   "badop" - byte 06 (push %es), which does not exist in 64-bit mode: undecodable.
 * Natively and under a DBI tool the process dies of SIGILL (shell status 132). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    printf("about to execute %s\n", argc > 1 ? argv[1] : "?");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "ud2") == 0)
        __asm__ volatile("ud2");
    else if (argc > 1 && strcmp(argv[1], "badop") == 0)
        __asm__ volatile(".byte 0x06");
    printf("still alive\n");
    return 0;
}
