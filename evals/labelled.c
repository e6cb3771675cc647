/* Labelled example sets from IDX pairs and CSV files (see labelled.h). */
#define _POSIX_C_SOURCE 200809L
#include "evals/labelled.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"

void labelled_free(labelled_set *s)
{
    if (!s) return;
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

/* A label must be an integer class index that fits int32. */
static bool label_ok(double v) { return v >= 0 && v <= INT32_MAX && v == floor(v); }

smelt_err *labelled_load_idx(const char *images, const char *labels, labelled_set *out)
{
    memset(out, 0, sizeof *out);
    idx_array im, lb;
    SMELT_TRY(idx_read(images, &im));
    smelt_err *err = idx_read(labels, &lb);
    if (err) {
        idx_free(&im);
        return err;
    }
    if (lb.ndim != 1)
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: IDX dims: labels have %d dims, expected 1 (one label an example)", labels, lb.ndim);
    else if (lb.dims[0] != im.dims[0])
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: IDX dims[0]: %lld labels, expected one for each of the %lld examples of %s", labels, (long long)lb.dims[0],
                        (long long)im.dims[0], images);
    for (int64_t i = 0; !err && i < lb.numel; i++)
        if (!label_ok(lb.data[i])) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: label %lld is %g, expected an integer class >= 0", labels, (long long)i, lb.data[i]);
    if (!err && !(out->y = malloc((size_t)lb.numel * sizeof *out->y))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!err) {
        out->n = im.dims[0];
        out->features = im.numel / im.dims[0];
        out->feat_ndim = im.ndim - 1;
        for (int d = 1; d < im.ndim; d++) out->feat_dims[d - 1] = im.dims[d];
        if (out->feat_ndim == 0) { /* a 1-D image file: one feature an example */
            out->feat_ndim = 1;
            out->feat_dims[0] = 1;
        }
        for (int64_t i = 0; i < lb.numel; i++) {
            out->y[i] = (int32_t)lb.data[i];
            if (out->y[i] > out->max_label) out->max_label = out->y[i];
        }
        out->x = im.data; /* adopted */
        im.data = NULL;
    }
    idx_free(&im);
    idx_free(&lb);
    if (err) labelled_free(out);
    return err;
}

/* Grows *buf (of *cap elements of size sz) to hold at least need elements. */
static bool grow(void **buf, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need) nc *= 2;
    void *nb = realloc(*buf, nc * sz);
    if (!nb) return false;
    *buf = nb;
    *cap = nc;
    return true;
}

/* Parses one data line into the growing arrays; *nf gets its field count. */
static smelt_err *parse_line(const char *path, long line, char *s, float **x, size_t *xcap, size_t xlen, size_t *nf, double *label)
{
    *nf = 0;
    for (char *p = s;;) {
        while (*p == ' ' || *p == '\t') p++;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        char *q = end;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (end == p || (*q != ',' && *q != 0) || errno == ERANGE || !isfinite(v)) {
            size_t len = strcspn(p, ",\r");
            return SMELT_ERR(SMELT_E_CORRUPT, "%s:%ld: field %zu: expected a finite number, found '%.*s'", path, line, *nf + 1, (int)(len > 40 ? 40 : len), p);
        }
        if (*nf == 0) {
            if (!label_ok(v)) return SMELT_ERR(SMELT_E_CORRUPT, "%s:%ld: field 1 (the label): found %g, expected an integer class >= 0", path, line, v);
            *label = v;
        } else {
            if (!grow((void **)x, xcap, xlen + *nf, sizeof **x)) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            (*x)[xlen + *nf - 1] = (float)v;
        }
        (*nf)++;
        if (*q == 0) return NULL;
        p = q + 1;
    }
}

smelt_err *labelled_load_csv(const char *path, labelled_set *out)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    SMELT_TRY(smelt_read_file(path, (size_t)1 << 34, &text, &len));
    if (memchr(text, 0, len)) {
        free(text);
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: a NUL byte, expected a text CSV file", path);
    }
    float *x = NULL;
    int32_t *y = NULL;
    size_t xcap = 0, ycap = 0, n = 0, features = 0;
    long line = 0, first_line = 0;
    bool seen_first = false;
    smelt_err *err = NULL;
    for (char *s = text, *next; !err && s && *s; s = next) {
        line++;
        next = strchr(s, '\n');
        if (next) *next++ = 0;
        char *t = s + strspn(s, " \t\r");
        if (*t == 0 || *t == '#') continue;
        bool header_ok = !seen_first;
        seen_first = true;
        size_t nf;
        double label = 0;
        err = parse_line(path, line, t, &x, &xcap, n * features, &nf, &label);
        if (err && header_ok) { /* a header line: its first field is not a number */
            char *end;
            strtod(t, &end);
            if (end == t) {
                smelt_err_free(err);
                err = NULL;
                continue;
            }
        }
        if (err) break;
        if (nf < 2) err = SMELT_ERR(SMELT_E_CORRUPT, "%s:%ld: a label and no features, expected label,feature,...", path, line);
        else if (n > 0 && nf - 1 != features)
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s:%ld: %zu features, expected %zu like line %ld", path, line, nf - 1, features, first_line);
        else if (!grow((void **)&y, &ycap, n + 1, sizeof *y))
            err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        if (err) break;
        if (n == 0) {
            features = nf - 1;
            first_line = line;
        }
        y[n++] = (int32_t)label;
    }
    free(text);
    if (!err && n == 0) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: no examples, expected lines of label,feature,...", path);
    if (err) {
        free(x);
        free(y);
        return err;
    }
    out->n = (int64_t)n;
    out->features = (int64_t)features;
    out->feat_ndim = 1;
    out->feat_dims[0] = (int64_t)features;
    out->x = x;
    out->y = y;
    for (size_t i = 0; i < n; i++)
        if (y[i] > out->max_label) out->max_label = y[i];
    return NULL;
}
