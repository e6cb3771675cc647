/* Reports over several eval results: a Markdown table of every artifact and an SVG chart of quality
 * (worst-domain perplexity increase over the suite's reference) against cost per 1M output tokens
 * (expected scenario), with the Pareto front (no other artifact both cheaper and better) marked. */
#ifndef SMELT_EVAL_REPORT_H
#define SMELT_EVAL_REPORT_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"

typedef struct {
    const char *label;  /* the artifact's path */
    double worst_ppl;   /* worst-domain perplexity increase, % */
    const char *worst_domain;
    bool has_cost;
    double usd_out_1m; /* expected scenario */
    bool pareto;
} report_point;

/* Reads the points of results[n] (paths name them in errors); *pts is malloc'd. */
smelt_err *report_points(json_t *const *results, const char *const *paths, int n, report_point **pts);
/* Marks the Pareto front among the points that have a cost. */
void report_pareto(report_point *p, int n);
char *report_markdown(json_t *const *results, const char *const *paths, const report_point *p, int n, const char *svg_name);
char *report_svg(const report_point *p, int n);

#endif
