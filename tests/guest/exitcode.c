/* Non-zero exit statuses by three routes, chosen by argv[1]:
 *   "exit3"  - exit(3) from main,
 *   "ret42"  - return 42 from main,
 *   "nested" - exit(77) from several calls deep, after an atexit handler is registered.
 * Output is flushed by exit, so buffered stdout must survive each route. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_exit_handler(void) { printf("atexit handler ran\n"); }

static int depth3(int x)
{
    printf("depth3 reached with %d\n", x);
    exit(77);
}
static int depth2(int x) { return depth3(x * 2) + 1; }
static int depth1(int x) { return depth2(x + 1) + 1; }

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    printf("mode %s\n", mode);
    if (strcmp(mode, "exit3") == 0)
        exit(3);
    if (strcmp(mode, "ret42") == 0)
        return 42;
    if (strcmp(mode, "nested") == 0) {
        atexit(on_exit_handler);
        return depth1(20);
    }
    printf("unknown mode\n");
    return 1;
}
