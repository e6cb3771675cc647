/* The thread pool: parallel loops over an index range for the work around the matrix products
 * (attention, norms, activations); OpenBLAS threads its own sgemm.
 *
 * One process-wide pool (with the log level, the only global mutable state smelt allows), started
 * on first use with SMELT_THREADS threads, or one per online CPU. Calls from inside a task run
 * serially, so kernels may nest freely. Between loops the workers poll for the next one for
 * SMELT_SPIN_US microseconds (default 50; 0: sleep at once) before they sleep.
 */
#ifndef SMELT_THREADS_H
#define SMELT_THREADS_H

#include <stdint.h>

/* fn(ctx, begin, end) is called on disjoint ranges covering [0, n); ranges hold at least `grain`
 * indices (except the last), so tiny loops stay on the calling thread. Returns when all are done.
 * A short loop with grain 1 (a caller's own parts, up to 8 a thread) gets one range a part, claimed
 * by whichever thread is free: split work into a few parts a thread to keep threads busy when one
 * of them starts late. */
typedef void (*smelt_range_fn)(void *ctx, int64_t begin, int64_t end);
void smelt_parallel_for(int64_t n, int64_t grain, smelt_range_fn fn, void *ctx);

/* Threads the pool uses (the caller included). */
int smelt_thread_count(void);

#endif
