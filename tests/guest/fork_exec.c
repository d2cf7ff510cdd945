/* Processes: fork + waitpid with a SIGCHLD handler, vfork + exec of itself, a child killed by
   a signal, a pipe between parent and child. */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
static volatile sig_atomic_t chld;
static void on_chld(int s) { (void)s; chld++; }
int main(int argc, char **argv) {
    if (argc > 1) { printf("child exec'd with %s\n", argv[1]); return 7; }
    signal(SIGCHLD, on_chld);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) { printf("in child\n"); _exit(3); }
    int st;
    while (waitpid(p, &st, 0) < 0) ;
    printf("child exited %d, sigchld seen %d\n", WEXITSTATUS(st), chld > 0);
    fflush(stdout);
    p = vfork();
    if (p == 0) { execl(argv[0], argv[0], "arg1", (char *)0); _exit(99); }
    waitpid(p, &st, 0);
    printf("exec child exited %d\n", WEXITSTATUS(st));
    p = fork();
    if (p == 0) { raise(SIGKILL); }
    waitpid(p, &st, 0);
    printf("killed child: signalled %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
    int fds[2]; pipe(fds);
    p = fork();
    if (p == 0) { close(fds[0]); write(fds[1], "hello pipe\n", 11); _exit(0); }
    close(fds[1]);
    char buf[64]; ssize_t n = read(fds[0], buf, sizeof buf);
    fwrite(buf, 1, n, stdout);
    waitpid(p, &st, 0);
    return 0;
}
