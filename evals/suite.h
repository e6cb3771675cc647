/* Eval suites: the human-written JSON file that says what an artifact is measured on.
 *
 *   {"name": "bundled", "reference": "../../models/llama-teacher", "window": 256,
 *    "domains": [{"name": "prose", "file": "../../data/prose.val.txt", "max_windows": 160,
 *                 "metrics": ["perplexity", "kl", "top1"]}, ...],
 *    "canaries": [{"name": "fox", "prompt": "The quick brown fox", "expected_ids": [14, 221, ...],
 *                  "first_n": 16, "source": "where the expected ids come from"}]}
 *
 * A classifier suite (every domain "task": "classify") scores an ONNX graph on labelled examples
 * instead (evals/classify.h):
 *
 *   {"name": "fashion", "reference": "../../models/fashion-cnn/model.onnx",
 *    "domains": [{"name": "t10k", "task": "classify", "images": "...idx3-ubyte.gz",
 *                 "labels": "...idx1-ubyte.gz", "scale": 0.00392156862745098, "mean": 0.286,
 *                 "std": 0.353, "metrics": ["accuracy", "agreement", "kl"]}]}
 *
 * Relative paths are resolved against the suite file's folder, so a suite travels with its data.
 * A new domain is a new entry, no code. docs/results.md describes every key. */
#ifndef SMELT_EVAL_SUITE_H
#define SMELT_EVAL_SUITE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "evals/cascade.h"

typedef enum { EVAL_TASK_LANGUAGE = 0, EVAL_TASK_CLASSIFY } eval_task;

/* A classifier domain: where its examples come from and how they become the model's input. */
typedef struct {
    char *labels;      /* resolved IDX label file; NULL when the examples are a CSV (eval_domain.file) */
    bool csv;          /* eval_domain.file is a CSV (label first, then the features) */
    double scale, mean, std; /* input = (value * scale - mean) / std, in double, then float */
    int batch;         /* examples a graph run */
    int max_examples;  /* 0: all; else the first this many */
    char *input;       /* the graph input to feed; NULL: the model's only input */
    bool agreement;    /* argmax equal to the reference's (accuracy is always measured; kl below) */
} eval_classify;

typedef struct {
    char *name;
    eval_task task;
    char *file;      /* resolved path of the domain's text (documents split by "\n\x1e\n"); classify: the IDX images or the CSV */
    int max_windows; /* 0: every window; else this many, spread evenly over the stream */
    bool kl, top1;   /* agreement metrics against the reference (perplexity is always measured) */
    eval_classify cls; /* task == EVAL_TASK_CLASSIFY */
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
    eval_task task;  /* every domain's (a suite does not mix language models and classifiers) */
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
