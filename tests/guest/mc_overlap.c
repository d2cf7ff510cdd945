/* Memcheck: copies whose source and destination overlap (each reported with the function's
   arguments), and string functions on heap strings whose vectorised C-library versions would
   read past the terminator (none of that may be reported). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char buf[64] = "abcdefghijklmnopqrstuvwxyz";

int main(int argc, char **argv) {
    (void)argv;
    char *s = malloc(6);
    strcpy(s, "hello");
    char *t = strdup(s);
    printf("%zu %d %s %s\n", strlen(s), strcmp(s, t), strchr(s, 'l'), strstr(s, "ll"));
    memcpy(buf + argc, buf, 9 + argc); /* MEMCPY */
    strncpy(buf + 20 + argc, buf + 20, 5); /* STRNCPY */
    memmove(buf + 30 + argc, buf + 30, 10);
    printf("%s\n", buf);
    free(t);
    free(s);
    return 0;
}
