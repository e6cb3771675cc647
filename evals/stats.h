/* Summary statistics for latency samples. */
#ifndef SMELT_EVAL_STATS_H
#define SMELT_EVAL_STATS_H

#include <jansson.h>
#include <stddef.h>

/* The q-quantile (0..1) of x[n] by linear interpolation between order statistics; sorts x in
 * place. 0 when n == 0. */
double stats_quantile(double *x, size_t n, double q);
/* {"p50", "p95", "p99", "mean", "max", "n"} of x[n] (sorted in place), each value times scale. */
json_t *stats_summary(double *x, size_t n, double scale);

#endif
