/* 16 pthreads: barrier, mutex and condition variable in a fixed order, TLS, join values. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#define N 16
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t bar;
static long total;
static int turn;
static __thread int tls_val;
static void *work(void *arg) {
    long id = (long)arg;
    tls_val = (int)id * 3;
    long local = 0;
    for (long i = 0; i < 20000; i++) local += i % (id + 1);
    pthread_barrier_wait(&bar);
    pthread_mutex_lock(&mu);
    while (turn != id) pthread_cond_wait(&cv, &mu);
    total += local;
    printf("thread %ld local %ld tls %d\n", id, local, tls_val);
    turn++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return (void *)(id * 2);
}
int main(void) {
    pthread_t t[N];
    pthread_barrier_init(&bar, 0, N);
    for (long i = 0; i < N; i++) pthread_create(&t[i], 0, work, (void *)i);
    long sum = 0;
    for (int i = 0; i < N; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
    printf("total %ld joined %ld\n", total, sum);
    return 0;
}
