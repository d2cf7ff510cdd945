/* A wrapper on pthread_create (in libc.so.6 for a dynamic program, in the executable itself,
 * soname NONE, for a static one): it reports each creation and the thread still runs. */
#include <pthread.h>
#include <stdio.h>
#include <valgrind/valgrind.h>

static int created;

static int wrapped(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg) {
    int r;
    OrigFn fn;
    VALGRIND_GET_ORIG_FN(fn);
    CALL_FN_W_WWWW(r, fn, t, a, f, arg);
    created++;
    printf("pthread_create's wrapper: result %d\n", r);
    return r;
}

int I_WRAP_SONAME_FNNAME_ZU(libcZdsoZd6, pthread_create)(pthread_t *t, const pthread_attr_t *a,
                                                          void *(*f)(void *), void *arg) {
    return wrapped(t, a, f, arg);
}

int I_WRAP_SONAME_FNNAME_ZU(NONE, pthread_create)(pthread_t *t, const pthread_attr_t *a,
                                                   void *(*f)(void *), void *arg) {
    return wrapped(t, a, f, arg);
}

static void *work(void *p) {
    *(int *)p *= 2;
    return NULL;
}

int main(void) {
    int v = 21;
    pthread_t t;
    if (pthread_create(&t, NULL, work, &v) != 0 || pthread_join(t, NULL) != 0)
        return 1;
    printf("v = %d, wrapper saw %d creation(s)\n", v, created);
    return 0;
}
