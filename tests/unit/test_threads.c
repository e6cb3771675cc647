/* The thread pool (core/threads.c): every index of a loop is visited exactly once, whether the
 * workers catch the loop while polling (loops back to back) or must be woken from sleep (a pause
 * longer than the spin between loops); nested calls and calls from two threads at once run
 * serially rather than deadlock or mix up their jobs. Run with 2+ threads (SMELT_THREADS=4 is set
 * before the pool starts, so the parallel path runs even on one CPU). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/threads.h"

typedef struct {
    _Atomic int *hits;
    int64_t n;
    int round;
    int64_t grain;      /* ranges shorter than this (but the last) are counted in short_ranges */
    _Atomic int short_ranges;
} mark_job;

/* hits[i] += 1 for each visited index: a visit twice or never shows as a count other than the
 * number of rounds. */
static void mark(void *ctx, int64_t b, int64_t e)
{
    mark_job *j = ctx;
    if (e - b < j->grain && e != j->n) atomic_fetch_add(&j->short_ranges, 1);
    for (int64_t i = b; i < e; i++) atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
}

static void run_rounds(int64_t n, int rounds, long pause_us)
{
    _Atomic int *hits = calloc((size_t)n, sizeof *hits);
    assert_non_null(hits);
    mark_job j = {hits, n, 0, 3, 0};
    for (int r = 0; r < rounds; r++) {
        smelt_parallel_for(n, 3, mark, &j);
        if (pause_us > 0) {
            struct timespec ts = {0, pause_us * 1000};
            nanosleep(&ts, NULL);
        }
    }
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&hits[i]) != rounds) fail_msg("n=%lld: index %lld visited %d times in %d loops", (long long)n, (long long)i, atomic_load(&hits[i]), rounds);
    assert_int_equal(atomic_load(&j.short_ranges), 0); /* every range but the last holds >= grain */
    free(hits);
}

/* Loops back to back: the workers pick them up while still polling. Sizes below, at and above
 * the thread count. */
static void back_to_back(void **state)
{
    (void)state;
    assert_int_equal(smelt_thread_count(), 4);
    const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 13, 64, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) run_rounds(sizes[s], 2000, 0);
}

/* A pause longer than the spin (50 us by default) between loops: the workers sleep and are woken. */
static void after_sleep(void **state)
{
    (void)state;
    run_rounds(37, 20, 3000);
}

/* A loop whose grain leaves one useful part runs on the caller alone, still visiting everything. */
static void grain_serial(void **state)
{
    (void)state;
    _Atomic int hits[10] = {0};
    mark_job j = {hits, 10, 0, 1, 0};
    smelt_parallel_for(10, 100, mark, &j);
    for (int i = 0; i < 10; i++) assert_int_equal(atomic_load(&hits[i]), 1);
}

typedef struct {
    _Atomic int *hits;
    int64_t inner;
} nest_job;

static void nest_outer(void *ctx, int64_t b, int64_t e)
{
    nest_job *j = ctx;
    for (int64_t i = b; i < e; i++) {
        mark_job m = {j->hits + i * j->inner, j->inner, 0, 1, 0};
        smelt_parallel_for(j->inner, 1, mark, &m); /* runs serially inside a task */
    }
}

static void nested(void **state)
{
    (void)state;
    enum { OUTER = 9, INNER = 13 };
    _Atomic int *hits = calloc(OUTER * INNER, sizeof *hits);
    assert_non_null(hits);
    nest_job j = {hits, INNER};
    for (int r = 0; r < 50; r++) smelt_parallel_for(OUTER, 1, nest_outer, &j);
    for (int i = 0; i < OUTER * INNER; i++) assert_int_equal(atomic_load(&hits[i]), 50);
    free(hits);
}

static void *caller_thread(void *arg)
{
    (void)arg;
    run_rounds(101, 1000, 0);
    return NULL;
}

/* Two threads issuing loops at once: one gets the pool, the other runs its loop serially; neither
 * sees the other's job. */
static void concurrent_callers(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, caller_thread, NULL), 0);
    run_rounds(77, 1000, 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

int main(void)
{
    setenv("SMELT_THREADS", "4", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(back_to_back), cmocka_unit_test(after_sleep), cmocka_unit_test(grain_serial),
        cmocka_unit_test(nested),       cmocka_unit_test(concurrent_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
