/* Log level and a single-line terminal progress indicator. */
#define _POSIX_C_SOURCE 200809L
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int smelt_verbose = 0;

bool smelt_progress_enabled(void)
{
    const char *ci = getenv("CI");
    return isatty(STDERR_FILENO) && !(ci && ci[0]);
}

double smelt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void smelt_progress_begin(smelt_progress *p, const char *label, int64_t total)
{
    p->label = label;
    p->total = total;
    p->t_start = smelt_now();
    p->t_last_draw = 0;
    p->on = smelt_progress_enabled();
}

void smelt_progress_update(smelt_progress *p, int64_t done)
{
    if (!p->on) return;
    double now = smelt_now();
    if (now - p->t_last_draw < 0.1 && done < p->total) return;
    p->t_last_draw = now;
    double el = now - p->t_start;
    double frac = p->total > 0 ? (double)done / (double)p->total : 0;
    double eta = frac > 0 ? el / frac - el : 0;
    fprintf(stderr, "\r%s: %lld/%lld (%3.0f%%) %.1fs elapsed, ETA %.1fs   ", p->label, (long long)done, (long long)p->total,
            frac * 100, el, eta);
    fflush(stderr);
}

void smelt_progress_end(smelt_progress *p)
{
    if (!p->on) return;
    fprintf(stderr, "\r%s: done in %.1fs%40s\n", p->label, smelt_now() - p->t_start, "");
}
