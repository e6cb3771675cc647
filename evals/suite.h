/* Eval suites: the human-written JSON file that says what an artifact is measured on.
 *
 *   {"name": "bundled", "reference": "../../models/llama-teacher", "window": 256,
 *    "domains": [{"name": "prose", "file": "../../data/prose.val.txt", "max_windows": 160,
 *                 "metrics": ["perplexity", "kl", "top1"]}, ...],
 *    "canaries": [{"name": "fox", "prompt": "The quick brown fox", "expected_ids": [14, 221, ...],
 *                  "first_n": 16, "source": "where the expected ids come from"}]}
 *
 * Relative paths are resolved against the suite file's folder, so a suite travels with its data.
 * A new domain is a new entry, no code. docs/results.md describes every key. */
#ifndef SMELT_EVAL_SUITE_H
#define SMELT_EVAL_SUITE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "evals/cascade.h"

typedef struct {
    char *name;
    char *file;      /* resolved path of the domain's text (documents split by "\n\x1e\n") */
    int max_windows; /* 0: every window; else this many, spread evenly over the stream */
    bool kl, top1;   /* agreement metrics against the reference (perplexity is always measured) */
} eval_domain;

typedef struct {
    char *name;
    char *prompt;
    int32_t *expected_ids; /* the reference's greedy continuation */
    int n_expected;
    int first_n; /* tokens that must match (≤ n_expected) */
    char *source;
} eval_canary;

typedef struct {
    char *path, *name;
    char *reference; /* resolved path of the reference model, NULL when the suite has none */
    int window;
    eval_domain *domains;
    int n_domains;
    eval_canary *canaries;
    int n_canaries;
    bool has_cascade; /* "cascade": {"confidence": "max_prob"|"entropy", "thresholds": [...]} */
    cascade_spec cascade;
    char sha256[65]; /* of the suite file's bytes, for the result's provenance */
} eval_suite;

/* Reads and checks a suite file. Errors name the file, the key and what was expected. */
smelt_err *suite_load(const char *path, eval_suite **out);
void suite_free(eval_suite *s);

/* base's folder joined with rel (rel itself when absolute). Caller frees; NULL on OOM. */
char *suite_resolve_path(const char *base_file, const char *rel);

#endif
