/* Logging level and terminal progress.
 *
 * Progress lines are drawn only when stderr is a terminal and CI is not set, so CI logs stay quiet.
 * The log level is one of the two pieces of global mutable state smelt allows.
 */
#ifndef SMELT_LOG_H
#define SMELT_LOG_H

#include <stdbool.h>
#include <stdint.h>

extern int smelt_verbose; /* 0 quiet, 1 -v (source locations of errors), 2 -vv (debug) */

/* True when progress should be drawn: stderr is a tty and the CI variable is unset. */
bool smelt_progress_enabled(void);

typedef struct {
    const char *label;
    int64_t total;
    double t_start;
    double t_last_draw;
    bool on;
} smelt_progress;

void smelt_progress_begin(smelt_progress *p, const char *label, int64_t total);
/* Redraws at most ~10 times a second. */
void smelt_progress_update(smelt_progress *p, int64_t done);
void smelt_progress_end(smelt_progress *p);

/* Monotonic seconds. */
double smelt_now(void);

#endif
