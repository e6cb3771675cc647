/* Release policies and the gate: a policy file's limits checked against an eval result (and
 * optionally a baseline result measured with the same suite), one check per domain and metric.
 *
 *   {"name": "strict",
 *    "checks": {"max_ppl_increase_pct": 1.0, "max_kl": 0.02, "min_top1": 0.95,
 *               "min_canary_pass_rate": 1.0, "max_ttft_p95_ms": 500, "max_itl_p95_ms": 100,
 *               "max_e2e_p95_ms": 20000, "max_usd_per_1m_output_tokens": 5.0,
 *               "max_usd_per_1m_input_tokens": 1.0},
 *    "domains": {"quotes": {"max_ppl_increase_pct": 2.0}}}
 *
 * Classifier domains ("task": "classify" in the result) have their own per-domain limits:
 * "max_accuracy_drop_pts" (reference or baseline accuracy minus the candidate's, in points),
 * "min_accuracy", "min_agreement" (and "max_kl").
 *
 * The per-domain limits (ppl, kl, top1, accuracy, agreement) apply to every domain of the result;
 * "domains" overrides them by name. Any limit may be left out; a limit whose measurement the result lacks fails its check. */
#ifndef SMELT_EVAL_GATE_H
#define SMELT_EVAL_GATE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"

typedef struct gate_policy gate_policy;

smelt_err *policy_load(const char *path, gate_policy **out);
void policy_free(gate_policy *p);
const char *policy_name(const gate_policy *p);

typedef struct {
    char domain[96]; /* "" for whole-artifact checks (canaries, latency, cost) */
    char metric[48]; /* "ppl_increase_pct", "kl", "top1", "accuracy_drop_pts", "agreement", "canary_pass_rate", ... */
    bool measured;   /* false: the result lacks the number (the check fails) */
    double value, limit;
    bool has_baseline;
    double baseline, delta; /* the baseline's value of the same metric and value - baseline */
    bool is_max;            /* limit is a maximum (else a minimum) */
    bool pass;
    char detail[256]; /* how the value was computed, e.g. "ppl 43.2951 vs baseline 28.1254" */
} gate_check;

/* Checks result (and baseline, may be NULL) against p; result_path/baseline_path name the files in
 * errors. A malformed result or a baseline measured on other windows is an error; *checks is
 * malloc'd (caller frees). */
smelt_err *gate_evaluate(const gate_policy *p, const json_t *result, const char *result_path, const json_t *baseline, const char *baseline_path,
                         gate_check **checks, int *n_checks);

/* JUnit XML (one testcase per check) and Markdown summary, as malloc'd strings. */
char *gate_junit(const char *policy, const char *artifact, const gate_check *c, int n);
char *gate_markdown(const char *policy, const char *artifact, const gate_check *c, int n);
/* One line per check: "prose ppl_increase_pct 53.93 > 1 (limit) FAIL: ..." */
void gate_check_line(const gate_check *c, char *buf, size_t n);

#endif
