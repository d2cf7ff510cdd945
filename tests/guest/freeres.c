/* Memory the C library keeps until exit (the stdout buffer) and the ways a program leaves:
 * `return` from main (no argument, status 3), `exit` (4), the last thread calling exit after
 * main's thread has gone with pthread_exit ("thread", 5), a second thread calling exit while
 * main waits in pause ("thread-exit", 6), `abort` (killed by SIGABRT), and "fork": the child
 * exits with 8 and the parent returns its status plus 1 (9). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A static link takes glibc's clean-up function only when something refers to it. */
extern void __libc_freeres(void);
void (*volatile keep_freeres)(void) = __libc_freeres;

static void *last_thread(void *arg) {
    (void)arg;
    sleep(1); /* main's thread is gone by now */
    printf("thread done\n");
    exit(5);
}

static void *exit_from_thread(void *arg) {
    (void)arg;
    printf("thread quits\n");
    exit(6);
}

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "return";
    printf("leaving by %s\n", how);
    pthread_t t;
    if (strcmp(how, "exit") == 0) {
        exit(4);
    } else if (strcmp(how, "thread") == 0) {
        pthread_create(&t, NULL, last_thread, NULL);
        pthread_exit(NULL);
    } else if (strcmp(how, "thread-exit") == 0) {
        pthread_create(&t, NULL, exit_from_thread, NULL);
        pause();
    } else if (strcmp(how, "abort") == 0) {
        fflush(stdout);
        abort();
    } else if (strcmp(how, "fork") == 0) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            printf("child\n");
            exit(8);
        }
        int status = 0;
        waitpid(child, &status, 0);
        return WEXITSTATUS(status) + 1;
    }
    return 3;
}
