/* Step cost calibration (see stepcost.h). */
#include "evals/stepcost.h"

#include <stdlib.h>
#include <time.h>

#include "core/threads.h"

/* CPU seconds of the whole process (every pool thread) divided by the pool's threads: what the
 * pass would take with the cores to itself. Wall time is not used because other processes'
 * load on a shared machine stretches it (measured: 20% spread between runs of min-of-7 wall
 * timings, under 5% with this clock). */
static double cpu_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9) / smelt_thread_count();
}

#define REPS 7
#define DECODE_REPS 128

/* A decode batch: n sequences holding ctx cached tokens each, stepped one token at a time. */
typedef struct {
    int n, ctx;
    llm_seq **s;
    llm_batch_item *it;
    double best;
} decode_shape;

static smelt_err *shape_init(llm_engine *e, decode_shape *d, int n, int ctx, const int32_t *ids)
{
    d->n = n;
    d->ctx = ctx;
    d->best = 1e30;
    d->s = calloc((size_t)n, sizeof *d->s);
    d->it = malloc((size_t)n * sizeof *d->it);
    if (!d->s || !d->it) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        SMELT_TRY(llm_seq_new(e, &d->s[i]));
        llm_batch_item p = {d->s[i], ids, ctx, false};
        SMELT_TRY(llm_forward(e, &p, 1, NULL));
    }
    return NULL;
}

static smelt_err *shape_time(llm_engine *e, decode_shape *d, const int32_t *ids)
{
    for (int i = 0; i < d->n; i++) {
        llm_seq_truncate(d->s[i], d->ctx);
        d->it[i] = (llm_batch_item){d->s[i], ids + d->ctx, 1, false};
    }
    double t0 = cpu_clock();
    SMELT_TRY(llm_forward(e, d->it, d->n, NULL));
    double dt = cpu_clock() - t0;
    if (dt < d->best) d->best = dt;
    return NULL;
}

static void shape_free(decode_shape *d)
{
    for (int i = 0; d->s && i < d->n; i++) llm_seq_free(d->s[i]);
    free(d->s);
    free(d->it);
}

/* Minimum of each decode shape over DECODE_REPS rounds, the shapes interleaved so that load from
 * other processes hits them alike. */
static smelt_err *time_decodes(llm_engine *e, decode_shape *d, int n_shapes, const int32_t *ids)
{
    smelt_err *err = NULL;
    for (int r = 0; !err && r < DECODE_REPS; r++)
        for (int k = 0; !err && k < n_shapes; k++) err = shape_time(e, &d[k], ids);
    return err;
}

static smelt_err *time_prefill(llm_engine *e, int len, const int32_t *ids, double *out)
{
    llm_seq *s = NULL;
    smelt_err *err = llm_seq_new(e, &s);
    double best = 1e30;
    for (int r = 0; !err && r < REPS; r++) {
        llm_seq_truncate(s, 0);
        llm_batch_item p = {s, ids, len, false};
        double t0 = cpu_clock();
        err = llm_forward(e, &p, 1, NULL);
        double dt = cpu_clock() - t0;
        if (dt < best) best = dt;
    }
    llm_seq_free(s);
    *out = best;
    return err;
}

static double nonneg(double x) { return x > 0 ? x : 0; }

smelt_err *stepcost_calibrate(llm_engine *e, int prompt_len, int max_batch, step_cost *out)
{
    const smelt_llm_config *c = llm_engine_config(e);
    int ctx_hi = prompt_len < c->max_pos - 2 ? prompt_len : c->max_pos - 2, ctx_lo = ctx_hi / 8 > 0 ? ctx_hi / 8 : 1;
    if (ctx_hi < 2) ctx_hi = 2;
    int b = max_batch > 1 ? (max_batch < 8 ? max_batch : 8) : 1;
    int32_t *ids = malloc((size_t)(ctx_hi + 1) * sizeof *ids);
    if (!ids) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    /* fixed, non-special ids: the cost does not depend on which tokens run */
    for (int i = 0; i <= ctx_hi; i++) ids[i] = 1 + (int32_t)((i * 2654435761u) % (uint32_t)(c->vocab_size - 1));
    decode_shape d[3] = {{0}};
    double pre = 0;
    smelt_err *err = shape_init(e, &d[0], 1, ctx_lo, ids);
    if (!err) err = shape_init(e, &d[1], b, ctx_lo, ids);
    if (!err) err = shape_init(e, &d[2], b, ctx_hi, ids);
    if (!err) err = time_decodes(e, d, 3, ids);
    if (!err) err = time_prefill(e, ctx_hi, ids, &pre);
    double d1_lo = d[0].best, db_lo = d[1].best, db_hi = d[2].best;
    for (int k = 0; k < 3; k++) shape_free(&d[k]);
    free(ids);
    if (err) return err;
    out->reps = DECODE_REPS;
    out->tc = ctx_hi > ctx_lo ? nonneg((db_hi - db_lo) / ((double)b * (ctx_hi - ctx_lo))) : 0;
    if (b > 1) {
        out->td = nonneg((db_lo - d1_lo) / (b - 1) - ctx_lo * out->tc);
        out->t0 = nonneg(d1_lo - out->td - ctx_lo * out->tc);
    } else {
        out->t0 = 0;
        out->td = nonneg(d1_lo - ctx_lo * out->tc);
    }
    out->tp = nonneg((pre - out->t0) / ctx_hi);
    return NULL;
}

double stepcost_predict(const step_cost *c, long prefill_tokens, long decode_seqs, long decode_context)
{
    return c->t0 + c->tp * (double)prefill_tokens + c->td * (double)decode_seqs + c->tc * (double)decode_context;
}

json_t *stepcost_json(const step_cost *c)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:i}", "pass_ms", c->t0 * 1e3, "prefill_token_ms", c->tp * 1e3, "decode_token_ms", c->td * 1e3, "context_token_ms",
                     c->tc * 1e3, "repetitions", c->reps);
}
