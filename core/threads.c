/* A fixed pool of worker threads for parallel loops. A loop's range is cut into one contiguous chunk
 * a thread (at least `grain` long; callers size their ranges to that, e.g. one sgemm a range), or,
 * for a short loop over a caller's own parts (grain 1, at most FINE_PARTS a thread), one chunk a
 * part. The caller and the workers claim chunks one at a time until none is left: when a worker is
 * slow to start (asleep, or its core taken by another process on a shared machine) the others, the
 * caller included, take its share instead of waiting for it. A loop costs one publication and one wait, not a thread start.
 *
 * Publication is an atomic generation counter. Between loops a worker first polls it for a short
 * while (SMELT_SPIN_US, default SPIN_US_DEFAULT microseconds) and only then sleeps on a condition
 * variable: an executor or a decoder runs many small loops back to back with a few microseconds of
 * serial work between them, and a futex wake-up (tens of microseconds when the sleeper must be
 * scheduled back in) would cost more than the loop itself. The caller waits for the last chunks the
 * same way. The spin is bounded, so a pool idle for long sleeps and takes no CPU, and it is off while
 * the process waits for CPUs (load_check).
 *
 * Claims: `claim` packs the job's id (the generation's low 32 bits), its chunk count and the next
 * unclaimed chunk; a claim is a CAS that fails once the id changed or all chunks are taken, so a
 * worker waking late never runs (or even reads) a finished job. The job's fields are plain memory
 * written by the caller before its release store of `claim` and read by a worker only after a
 * successful (acquire) claim; the caller rewrites them only once `done` (release increments after
 * each chunk) counts every chunk. Sleepers are counted under the mutex, so a publication either sees
 * a sleeper (and broadcasts under the mutex) or the sleeper sees the new generation before it waits:
 * no lost wake-up. */
#define _POSIX_C_SOURCE 200809L
#include "core/threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define SPIN_US_DEFAULT 50
#define FINE_PARTS 8

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t wake, done_cv;
    int n_threads;
    int64_t spin_ns;
    _Atomic int spin_on;       /* 0 while this process waits for CPUs (see load_check) */
    /* load_check's last sample (touched only by the thread holding `busy`) */
    pthread_t sample_thread;
    int64_t sample_t, sample_delay;
    bool sample_ok, no_schedstat;
    /* the current job (plain fields: see the ordering above) */
    smelt_range_fn fn;
    void *ctx;
    int64_t n, chunk;
    _Atomic uint64_t generation;
    _Atomic uint64_t claim;    /* job id << 32 | chunks << 16 | next chunk */
    _Atomic int64_t done;      /* chunks of the current job finished */
    _Atomic int sleepers;      /* workers waiting on `wake` (changed under mu) */
    _Atomic int caller_waits;  /* the caller waits on `done` */
    atomic_flag busy;          /* a job is running: nested or concurrent calls run serially */
} pool = {.once = PTHREAD_ONCE_INIT,
          .mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done_cv = PTHREAD_COND_INITIALIZER,
          .busy = ATOMIC_FLAG_INIT};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Bounded polling: spin_init, then spin_more after each unsuccessful poll until it says stop; pause
 * loops, the clock read every 64. No sched_yield between polls: on an oversubscribed machine a
 * yielding worker hands its core to another process for a whole time slice and misses the next
 * loops (measured: it ran 12% of a loop's parts instead of 45%); a caller never waits on a worker
 * that has not started (it takes the chunk itself), so plain spinning costs at most the budget. */

typedef struct {
    int64_t start, t;
    unsigned i;
} spinner;

static void spin_init(spinner *s) { s->start = s->t = now_ns(), s->i = 0; }

static bool spin_more(spinner *s)
{
    cpu_relax();
    if ((++s->i & 63) == 0) s->t = now_ns();
    return s->t - s->start < pool.spin_ns;
}

/* Spinning pays on a machine with cores to spare; on an oversubscribed one (CI, a box shared with
 * other jobs) every microsecond a worker spins is taken from a thread that has work. Every 20 ms the
 * caller reads how long it waited on a run queue since the last look (the kernel's schedstat for
 * the thread): over 10% of the time, the pool stops polling and sleeps at once until that drops. */
#define LOAD_CHECK_NS 20000000
#define LOAD_WAIT_MAX 0.10

static void load_check(void)
{
    if (pool.no_schedstat || pool.spin_ns <= 0) return;
    int64_t now = now_ns();
    if (pool.sample_ok && now - pool.sample_t < LOAD_CHECK_NS) return;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    unsigned long long run = 0, delay = 0;
    bool ok = f && fscanf(f, "%llu %llu", &run, &delay) == 2;
    if (f) fclose(f);
    if (!ok) {
        pool.no_schedstat = true; /* no schedstat: keep polling */
        return;
    }
    pthread_t self = pthread_self();
    if (pool.sample_ok && pthread_equal(self, pool.sample_thread) && now > pool.sample_t) {
        double waited = (double)((int64_t)delay - pool.sample_delay) / (double)(now - pool.sample_t);
        atomic_store_explicit(&pool.spin_on, waited <= LOAD_WAIT_MAX, memory_order_relaxed);
    }
    pool.sample_thread = self, pool.sample_t = now, pool.sample_delay = (int64_t)delay, pool.sample_ok = true;
}

static bool spinning(void) { return pool.spin_ns > 0 && atomic_load_explicit(&pool.spin_on, memory_order_relaxed); }

/* The generation once it differs from seen, or seen when the spin ran out. */
static uint64_t spin_generation(uint64_t seen)
{
    uint64_t g = atomic_load_explicit(&pool.generation, memory_order_acquire);
    if (!spinning() || g != seen) return g;
    spinner s;
    spin_init(&s);
    while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen && spin_more(&s)) {
    }
    return g;
}

/* Claims and runs chunks of job `id` until none is left; returns how many it ran. */
static int64_t run_chunks(uint32_t id)
{
    int64_t ran = 0;
    for (;;) {
        uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
        uint32_t next = (uint32_t)(c & 0xffff), chunks = (uint32_t)((c >> 16) & 0xffff);
        if ((uint32_t)(c >> 32) != id || next >= chunks) return ran;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acquire, memory_order_relaxed)) continue;
        int64_t b = (int64_t)next * pool.chunk, e = b + pool.chunk < pool.n ? b + pool.chunk : pool.n;
        pool.fn(pool.ctx, b, e);
        ran++;
        /* seq_cst pairs with the caller's store of caller_waits: one of the two sees the other */
        if (atomic_fetch_add(&pool.done, 1) + 1 == (int64_t)chunks && atomic_load(&pool.caller_waits)) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done_cv);
            pthread_mutex_unlock(&pool.mu);
        }
    }
}

static void *worker(void *arg)
{
    (void)arg;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = spin_generation(seen);
        if (g == seen) {
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((g = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        run_chunks((uint32_t)g);
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
    const char *spin = getenv("SMELT_SPIN_US");
    long us = spin && *spin ? atol(spin) : SPIN_US_DEFAULT;
    pool.spin_ns = us < 0 ? 0 : us > 100000 ? 100000000 : us * 1000;
    atomic_store(&pool.spin_on, 1);
    pool.n_threads = 1;
    for (long i = 1; i < n; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        bool ok = pthread_create(&t, &attr, worker, NULL) == 0;
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
    if (threads == 1 || useful < 2 || atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        fn(ctx, 0, n);
        return;
    }
    load_check();
    int64_t chunk = (n + threads - 1) / threads;
    if (chunk < grain) chunk = grain;
    if (grain == 1 && n <= (int64_t)threads * FINE_PARTS) chunk = 1;
    if ((n + chunk - 1) / chunk > 0xffff) chunk = (n + 0xfffe) / 0xffff; /* the claim holds 16 bits of chunk index */
    int64_t chunks = (n + chunk - 1) / chunk;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunk = chunk;
    uint64_t g = atomic_load_explicit(&pool.generation, memory_order_relaxed) + 1; /* only the busy holder writes it */
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.claim, (uint64_t)(uint32_t)g << 32 | (uint64_t)chunks << 16, memory_order_release);
    /* seq_cst (not just release): pairs with a worker's increment of sleepers then load of
     * generation, so one of the two sees the other's write; a sleeper re-reads generation under mu */
    atomic_store(&pool.generation, g);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }
    run_chunks((uint32_t)g);
    if (spinning() && atomic_load_explicit(&pool.done, memory_order_acquire) < chunks) {
        spinner sp;
        spin_init(&sp);
        while (atomic_load_explicit(&pool.done, memory_order_acquire) < chunks && spin_more(&sp)) {
        }
    }
    if (atomic_load_explicit(&pool.done, memory_order_acquire) < chunks) {
        pthread_mutex_lock(&pool.mu);
        atomic_store(&pool.caller_waits, 1);
        while (atomic_load(&pool.done) < chunks) pthread_cond_wait(&pool.done_cv, &pool.mu);
        atomic_store(&pool.caller_waits, 0);
        pthread_mutex_unlock(&pool.mu);
    }
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
}
