/* Blocking calls and signals: EINTR without SA_RESTART, restart with it (signal from another
   thread), nanosleep never restarted, sigsuspend, sigwait, and SIGCHLD not interrupting a read. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

static volatile sig_atomic_t hits;
static void h(int s) { (void)s; hits++; }
static void arm(long usec) {
    struct itimerval it = {{0, 0}, {0, usec}};
    setitimer(ITIMER_REAL, &it, 0);
}
static pthread_t main_thread;
static void *poker(void *a) {
    (void)a;
    usleep(50000);
    pthread_kill(main_thread, SIGUSR1);
    usleep(50000);
    write(*(int *)a, "x", 1);
    return 0;
}
int main(void) {
    int fds[2];
    pipe(fds);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigaction(SIGALRM, &sa, 0);
    char c;
    arm(30000);
    ssize_t n = read(fds[0], &c, 1);
    printf("read without SA_RESTART: %zd %s hits=%d\n", n, n < 0 && errno == EINTR ? "EINTR" : "?", hits);
    /* With SA_RESTART the read is restarted; a thread signals the main thread, then writes. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, 0);
    main_thread = pthread_self();
    pthread_t t;
    pthread_create(&t, 0, poker, &fds[1]);
    n = read(fds[0], &c, 1);
    printf("read with SA_RESTART: %zd '%c' hits=%d\n", n, c, hits);
    pthread_join(t, 0);
    /* nanosleep is never restarted. */
    arm(20000);
    struct timespec ts = {5, 0};
    int r = nanosleep(&ts, &ts);
    printf("nanosleep: %d %s hits=%d\n", r, r < 0 && errno == EINTR ? "EINTR" : "?", hits);
    /* sigsuspend with SIGALRM blocked outside it. */
    sigset_t blk, old, during;
    sigemptyset(&blk);
    sigaddset(&blk, SIGALRM);
    sigprocmask(SIG_BLOCK, &blk, &old);
    arm(20000);
    sigemptyset(&during);
    sigsuspend(&during);
    sigset_t now;
    sigprocmask(SIG_SETMASK, 0, &now);
    printf("sigsuspend woke hits=%d alrm still blocked %d\n", hits, sigismember(&now, SIGALRM));
    /* sigwait on a blocked signal. */
    raise(SIGALRM);
    int sig = 0;
    sigwait(&blk, &sig);
    printf("sigwait got %d hits=%d\n", sig, hits);
    sigprocmask(SIG_SETMASK, &old, 0);
    /* SIGCHLD ignored by default does not interrupt a read. */
    if (fork() == 0) _exit(0);
    arm(100000);
    n = read(fds[0], &c, 1);
    printf("read after child exit: %zd hits=%d\n", n, hits);
    return 0;
}
