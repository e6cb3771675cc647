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

/* Minimum over REPS of one decode step of n sequences that each hold ctx cached tokens. */
static smelt_err *time_decode(llm_engine *e, int n, int ctx, const int32_t *ids, double *out)
{
    llm_seq **s = calloc((size_t)n, sizeof *s);
    llm_batch_item *it = malloc((size_t)n * sizeof *it);
    smelt_err *err = s && it ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; !err && i < n; i++) {
        err = llm_seq_new(e, &s[i]);
        if (!err) {
            llm_batch_item p = {s[i], ids, ctx, false};
            err = llm_forward(e, &p, 1, NULL);
        }
    }
    double best = 1e30;
    for (int r = 0; !err && r < REPS; r++) {
        for (int i = 0; i < n; i++) {
            llm_seq_truncate(s[i], ctx);
            it[i] = (llm_batch_item){s[i], ids + ctx, 1, false};
        }
        double t0 = cpu_clock();
        err = llm_forward(e, it, n, NULL);
        double dt = cpu_clock() - t0;
        if (dt < best) best = dt;
    }
    for (int i = 0; s && i < n; i++) llm_seq_free(s[i]);
    free(s);
    free(it);
    *out = best;
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
    double d1_lo = 0, db_lo = 0, db_hi = 0, pre = 0;
    smelt_err *err = time_decode(e, 1, ctx_lo, ids, &d1_lo);
    if (!err) err = time_decode(e, b, ctx_lo, ids, &db_lo);
    if (!err) err = time_decode(e, b, ctx_hi, ids, &db_hi);
    if (!err) err = time_prefill(e, ctx_hi, ids, &pre);
    free(ids);
    if (err) return err;
    out->reps = REPS;
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
