/* Prints argc, every argv string (with its length) and the environment variables whose names
 * start with VGT_ (sorted), so argument and environment passing can be compared. Other
 * variables are skipped: a DBI tool may legitimately add its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv, char **envp)
{
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d] (%zu) = [%s]\n", i, strlen(argv[i]), argv[i]);
    if (argv[argc] != NULL)
        printf("argv not NULL-terminated!\n");
    char *mine[256];
    int n = 0;
    for (char **e = envp; *e && n < 256; e++)
        if (strncmp(*e, "VGT_", 4) == 0)
            mine[n++] = *e;
    qsort(mine, (size_t)n, sizeof mine[0], cmp);
    for (int i = 0; i < n; i++)
        printf("env %s\n", mine[i]);
    const char *g = getenv("VGT_GREETING");
    printf("getenv(VGT_GREETING) = %s\n", g ? g : "(null)");
    return argc;
}
