/* Percentiles and summaries (see stats.h). */
#include "evals/stats.h"

#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double stats_quantile(double *x, size_t n, double q)
{
    if (n == 0) return 0;
    qsort(x, n, sizeof *x, cmp_double);
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return x[n - 1];
    return x[i] + (pos - (double)i) * (x[i + 1] - x[i]);
}

json_t *stats_summary(double *x, size_t n, double scale)
{
    double sum = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
        if (x[i] > mx) mx = x[i];
    }
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:I}", "p50", stats_quantile(x, n, 0.50) * scale, "p95", stats_quantile(x, n, 0.95) * scale, "p99",
                     stats_quantile(x, n, 0.99) * scale, "mean", n ? sum / (double)n * scale : 0, "max", mx * scale, "n", (json_int_t)n);
}
