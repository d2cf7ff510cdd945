/* Signals: SIGSEGV/SIGFPE handlers that siglongjmp out (siginfo, ucontext), raise/kill with
   masks and sigpending, alarm during pause and during a spin loop, sigaltstack with SA_ONSTACK,
   SIG_IGN, SA_RESETHAND, and death by SIGTERM (status 143). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>

static sigjmp_buf jb;
static volatile sig_atomic_t got;
static void segv(int sig, siginfo_t *si, void *uc) {
    ucontext_t *u = uc;
    printf("handler sig=%d code=%d addr=%p rip_ok=%d\n", sig, si->si_code, si->si_addr,
           u->uc_mcontext.gregs[REG_RIP] != 0);
    siglongjmp(jb, 1);
}
static void usr1(int sig) { got = sig; }
static void alrm(int sig) { got = sig; }
static char altstack[65536];
static void onalt(int sig) {
    int x;
    printf("on altstack: %d\n", (char *)&x >= altstack && (char *)&x < altstack + sizeof altstack);
    (void)sig;
}
static void fpe(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("fpe sig=%d code=%d\n", sig, si->si_code);
    siglongjmp(jb, 2);
}
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    for (int i = 0; i < 3; i++) {
        if (sigsetjmp(jb, 1) == 0) {
            *(volatile int *)(long)(0x1000 + i * 8) = 1;
            printf("not reached\n");
        } else {
            printf("recovered %d\n", i);
        }
    }
    sa.sa_sigaction = fpe;
    sigaction(SIGFPE, &sa, 0);
    if (sigsetjmp(jb, 1) == 0) {
        volatile int z = 0;
        printf("%d\n", 10 / z);
    } else printf("recovered fpe\n");
    signal(SIGUSR1, usr1);
    raise(SIGUSR1);
    printf("after raise got=%d\n", got);
    got = 0;
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, &old);
    kill(getpid(), SIGUSR1);
    printf("blocked got=%d\n", got);
    sigpending(&s);
    printf("pending usr1=%d\n", sigismember(&s, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, 0);
    printf("unblocked got=%d\n", got);
    signal(SIGALRM, alrm);
    got = 0;
    alarm(1);
    pause();
    printf("pause returned got=%d\n", got);
    got = 0;
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, 0);
    while (!got) ;
    printf("spin loop saw alarm got=%d\n", got);
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = onalt;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, 0);
    raise(SIGUSR2);
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    printf("ignored ok\n");
    /* SA_RESETHAND */
    sa.sa_handler = usr1; sa.sa_flags = SA_RESETHAND;
    sigaction(SIGUSR1, &sa, 0);
    raise(SIGUSR1);
    sigaction(SIGUSR1, 0, &sa);
    printf("reset to default: %d\n", sa.sa_handler == SIG_DFL);
    fflush(stdout);
    raise(SIGTERM);
    printf("not reached\n");
    return 0;
}
