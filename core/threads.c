/* A fixed pool of worker threads woken by a condition variable for each parallel loop. The loop's
 * range is cut into one contiguous chunk a thread, the caller taking the first, so a loop costs one
 * broadcast and one wait, not a thread start. */
#define _POSIX_C_SOURCE 200809L
#include "core/threads.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 256

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    int n_threads;
    /* the current job */
    uint64_t generation;
    smelt_range_fn fn;
    void *ctx;
    int64_t n, chunk;
    int pending; /* workers still running the current job */
    bool busy;   /* a job is running: nested calls run serially */
} pool = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void run_chunk(int idx, smelt_range_fn fn, void *ctx, int64_t n, int64_t chunk)
{
    int64_t b = (int64_t)idx * chunk, e = b + chunk < n ? b + chunk : n;
    if (b < e) fn(ctx, b, e);
}

static void *worker(void *arg)
{
    int idx = (int)(intptr_t)arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.mu);
        seen = pool.generation;
        smelt_range_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int64_t n = pool.n, chunk = pool.chunk;
        pthread_mutex_unlock(&pool.mu);
        run_chunk(idx, fn, ctx, n, chunk);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

static void pool_start(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("SMELT_THREADS");
    if (env && atoi(env) > 0) n = atoi(env);
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    pool.n_threads = 1;
    for (long i = 1; i < n; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        bool ok = pthread_create(&t, &attr, worker, (void *)(intptr_t)i) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break; /* fewer threads is slower, not wrong */
        pool.n_threads++;
    }
}

int smelt_thread_count(void)
{
    pthread_once(&pool.once, pool_start);
    return pool.n_threads;
}

void smelt_parallel_for(int64_t n, int64_t grain, smelt_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    int threads = smelt_thread_count();
    if (grain < 1) grain = 1;
    int64_t useful = (n + grain - 1) / grain;
    pthread_mutex_lock(&pool.mu);
    if (threads == 1 || useful < 2 || pool.busy) {
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, 0, n);
        return;
    }
    int64_t chunk = (n + threads - 1) / threads;
    if (chunk < grain) chunk = grain;
    pool.busy = true;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunk = chunk;
    pool.pending = threads - 1;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    run_chunk(0, fn, ctx, n, chunk);
    pthread_mutex_lock(&pool.mu);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = false;
    pthread_mutex_unlock(&pool.mu);
}
