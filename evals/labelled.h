/* Labelled examples for classifier suites: features as float rows plus an integer class label,
 * from a pair of IDX files (evals/idx.h: examples x feature dims, and a 1-D label file of the
 * same length) or from a CSV file (one example a line: the label, then the features):
 *
 *   # comment lines and blank lines are skipped; a first line whose first field is not a
 *   # number is a header and skipped too
 *   label,f0,f1,...
 *   9,0,0,12,255,...
 *
 * Every row must have the same number of features; labels are integers >= 0. Errors name the file
 * and the line or field. */
#ifndef SMELT_EVAL_LABELLED_H
#define SMELT_EVAL_LABELLED_H

#include <stdint.h>

#include "core/err.h"
#include "evals/idx.h"

typedef struct {
    int64_t n;        /* examples */
    int64_t features; /* values an example */
    int feat_ndim;    /* shape of one example (IDX: the dims after the first; CSV: [features]) */
    int64_t feat_dims[IDX_MAX_DIMS];
    float *x;     /* n x features, row-major */
    int32_t *y;   /* n labels */
    int32_t max_label;
} labelled_set;

smelt_err *labelled_load_idx(const char *images, const char *labels, labelled_set *out);
smelt_err *labelled_load_csv(const char *path, labelled_set *out);
void labelled_free(labelled_set *s);

#endif
