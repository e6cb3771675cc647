/* Error values: a formatted message, a kind and the source location that raised it. */
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smelt_err {
    smelt_err_kind kind;
    char *msg;
    char where[96];
};

/* Returned when allocating the error itself fails, so callers always get a non-NULL error. */
static smelt_err oom_err = {SMELT_E_NOMEM, "out of memory", "core/err.c"};

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

smelt_err *smelt_err_new(smelt_err_kind kind, const char *src_file, int src_line, const char *fmt, ...)
{
    smelt_err *e = calloc(1, sizeof *e);
    if (!e) return &oom_err;
    va_list ap;
    va_start(ap, fmt);
    e->msg = vformat(fmt, ap);
    va_end(ap);
    if (!e->msg) {
        free(e);
        return &oom_err;
    }
    e->kind = kind;
    snprintf(e->where, sizeof e->where, "%s:%d", src_file, src_line);
    return e;
}

smelt_err *smelt_err_wrap(smelt_err *err, const char *fmt, ...)
{
    if (!err || err == &oom_err) return err;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = vformat(fmt, ap);
    va_end(ap);
    if (!ctx) return err;
    size_t n = strlen(ctx) + 2 + strlen(err->msg) + 1;
    char *m = malloc(n);
    if (m) {
        snprintf(m, n, "%s: %s", ctx, err->msg);
        free(err->msg);
        err->msg = m;
    }
    free(ctx);
    return err;
}

const char *smelt_err_msg(const smelt_err *err) { return err ? err->msg : ""; }
smelt_err_kind smelt_err_kind_of(const smelt_err *err) { return err ? err->kind : 0; }
const char *smelt_err_where(const smelt_err *err) { return err ? err->where : ""; }

void smelt_err_free(smelt_err *err)
{
    if (!err || err == &oom_err) return;
    free(err->msg);
    free(err);
}
