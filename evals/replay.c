/* The workload replay: an event loop on a simulated clock around llm_forward (see replay.h). */
#include "evals/replay.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"
#include "evals/stats.h"
#include "evals/stepcost.h"

typedef enum { REQ_PENDING, REQ_QUEUED, REQ_RUNNING, REQ_DONE, REQ_DROPPED } req_state;

typedef struct {
    workload_request spec;
    req_state state;
    bool arrived;
    double t_arrival, t_admit, t_first, t_last, t_done;
    int generated;
    int32_t *prompt;
    int32_t last; /* the token to feed next */
    llm_seq *seq;
} request;

typedef struct {
    const workload_profile *w;
    llm_engine *e;
    request *r;
    int n;
    double now;
    int next_closed; /* closed loop: the next request to release */
    double *itl;
    size_t n_itl;
    /* per step */
    double prefill_s, decode_s, mixed_s;
    long prefill_tokens, decode_tokens, decode_tokens_pure;
    long *batch_hist; /* [max_batch + 1] steps with that many sequences */
    long steps;
    step_cost cost;
    double wall_forward_s; /* measured, for comparison with the modelled clock */
} replay;

/* Marks arrivals up to now; closed-loop requests arrive when released. */
static void take_arrivals(replay *rp)
{
    for (int i = 0; i < rp->n; i++) {
        request *q = &rp->r[i];
        if (q->state == REQ_PENDING && q->arrived && q->t_arrival <= rp->now) q->state = REQ_QUEUED;
    }
}

static void release_closed(replay *rp, double t)
{
    if (rp->next_closed >= rp->n) return;
    request *q = &rp->r[rp->next_closed++];
    q->arrived = true;
    q->t_arrival = t;
}

/* The earliest arrival still pending, or INFINITY. */
static double next_arrival(const replay *rp)
{
    double t = INFINITY;
    for (int i = 0; i < rp->n; i++)
        if (rp->r[i].state == REQ_PENDING && rp->r[i].arrived && rp->r[i].t_arrival < t) t = rp->r[i].t_arrival;
    return t;
}

static int count_state(const replay *rp, req_state s)
{
    int k = 0;
    for (int i = 0; i < rp->n; i++) k += rp->r[i].state == s;
    return k;
}

static double oldest_queued(const replay *rp)
{
    double t = INFINITY;
    for (int i = 0; i < rp->n; i++)
        if (rp->r[i].state == REQ_QUEUED && rp->r[i].t_arrival < t) t = rp->r[i].t_arrival;
    return t;
}

/* Admits up to k queued requests in arrival order. */
static smelt_err *admit(replay *rp, int k)
{
    while (k-- > 0) {
        request *best = NULL;
        for (int i = 0; i < rp->n; i++)
            if (rp->r[i].state == REQ_QUEUED && (!best || rp->r[i].t_arrival < best->t_arrival)) best = &rp->r[i];
        if (!best) break;
        SMELT_TRY(llm_seq_new(rp->e, &best->seq));
        best->state = REQ_RUNNING;
        best->t_admit = rp->now;
    }
    return NULL;
}

/* One forward pass over every running request: prompts of the newly admitted, one token of the
 * others. */
static smelt_err *step(replay *rp, llm_batch_item *items, request **who, float *logits)
{
    int ni = 0, vocab = llm_engine_config(rp->e)->vocab_size;
    long pre = 0, dec = 0, dec_ctx = 0;
    for (int i = 0; i < rp->n; i++) {
        request *q = &rp->r[i];
        if (q->state != REQ_RUNNING) continue;
        if (q->generated == 0) {
            items[ni] = (llm_batch_item){q->seq, q->prompt, q->spec.n_prompt, false};
            pre += q->spec.n_prompt;
        } else {
            items[ni] = (llm_batch_item){q->seq, &q->last, 1, false};
            dec++;
            dec_ctx += llm_seq_len(q->seq);
        }
        who[ni++] = q;
    }
    double t0 = smelt_now();
    SMELT_TRY(llm_forward(rp->e, items, ni, logits));
    rp->wall_forward_s += smelt_now() - t0;
    double dt = stepcost_predict(&rp->cost, pre, dec, dec_ctx);
    rp->now += dt;
    rp->steps++;
    rp->batch_hist[ni]++;
    rp->prefill_tokens += pre;
    rp->decode_tokens += dec;
    if (pre && dec) rp->mixed_s += dt;
    else if (pre) rp->prefill_s += dt;
    else {
        rp->decode_s += dt;
        rp->decode_tokens_pure += dec;
    }
    for (int b = 0; b < ni; b++) {
        request *q = who[b];
        const float *row = logits + (size_t)b * vocab;
        int am = 0;
        for (int v = 1; v < vocab; v++)
            if (row[v] > row[am]) am = v;
        q->last = am;
        if (q->generated == 0) q->t_first = rp->now;
        else rp->itl[rp->n_itl++] = rp->now - q->t_last;
        q->t_last = rp->now;
        if (++q->generated == q->spec.n_output) {
            q->state = REQ_DONE;
            q->t_done = rp->now;
            llm_seq_free(q->seq);
            q->seq = NULL;
            if (rp->w->arrival == ARRIVAL_CLOSED) release_closed(rp, rp->now);
        }
    }
    return NULL;
}

static smelt_err *run_loop(replay *rp, llm_batch_item *items, request **who, float *logits, smelt_progress *pg)
{
    const workload_profile *w = rp->w;
    double max_wait = w->max_wait_ms / 1000;
    for (;;) {
        take_arrivals(rp);
        int running = count_state(rp, REQ_RUNNING), queued = count_state(rp, REQ_QUEUED);
        /* Past the time bound nothing new is admitted; what runs finishes. */
        if (rp->now > w->max_duration_s) {
            for (int i = 0; i < rp->n; i++)
                if (rp->r[i].state == REQ_QUEUED || rp->r[i].state == REQ_PENDING) rp->r[i].state = REQ_DROPPED;
            queued = 0;
        }
        if (running == 0 && queued == 0) {
            double t = rp->now > w->max_duration_s ? INFINITY : next_arrival(rp);
            if (isinf(t)) break;
            rp->now = t > rp->now ? t : rp->now;
            continue;
        }
        int free_slots = (int)w->max_batch - running;
        bool may_admit = free_slots > 0 && queued > 0 && (w->batching == BATCH_DYNAMIC || running == 0);
        if (may_admit && running == 0 && queued < w->max_batch) {
            /* An idle engine waits up to max_wait for the batch to fill. */
            double deadline = oldest_queued(rp) + max_wait, t = next_arrival(rp);
            if (rp->now < deadline) {
                rp->now = t < deadline ? t : deadline;
                continue;
            }
        }
        if (may_admit) SMELT_TRY(admit(rp, free_slots));
        if (count_state(rp, REQ_RUNNING) == 0) continue;
        SMELT_TRY(step(rp, items, who, logits));
        smelt_progress_update(pg, count_state(rp, REQ_DONE));
    }
    return NULL;
}

static json_t *batch_json(const replay *rp)
{
    json_t *h = json_object();
    double sum = 0;
    for (long b = 1; b <= rp->w->max_batch; b++) {
        if (!rp->batch_hist[b]) continue;
        char k[24];
        snprintf(k, sizeof k, "%ld", b);
        json_object_set_new(h, k, json_integer(rp->batch_hist[b]));
        sum += (double)b * (double)rp->batch_hist[b];
    }
    return json_pack("{s:o, s:f, s:I}", "steps_by_size", h, "mean", rp->steps ? sum / (double)rp->steps : 0, "steps", (json_int_t)rp->steps);
}

static json_t *summarize(replay *rp, double scale, double wall)
{
    const workload_profile *w = rp->w;
    double *ttft = malloc((size_t)rp->n * sizeof *ttft), *e2e = malloc((size_t)rp->n * sizeof *e2e), *qw = malloc((size_t)rp->n * sizeof *qw);
    if (!ttft || !e2e || !qw) {
        free(ttft);
        free(e2e);
        free(qw);
        return NULL;
    }
    size_t nd = 0;
    double sum_p = 0, sum_o = 0, t_end = 0;
    int dropped = 0;
    for (int i = 0; i < rp->n; i++) {
        request *q = &rp->r[i];
        if (q->state != REQ_DONE) {
            dropped++;
            continue;
        }
        ttft[nd] = q->t_first - q->t_arrival;
        e2e[nd] = q->t_done - q->t_arrival;
        qw[nd] = q->t_admit - q->t_arrival;
        nd++;
        sum_p += q->spec.n_prompt;
        sum_o += q->spec.n_output;
        if (q->t_done > t_end) t_end = q->t_done;
    }
    const llm_engine *e = rp->e;
    size_t kv_tok = llm_kv_bytes_per_token(e), weights = llm_engine_weight_bytes(e);
    double mean_p = nd ? sum_p / (double)nd : 0, mean_o = nd ? sum_o / (double)nd : 0;
    double kv_session = (double)kv_tok * (mean_p + mean_o);
    double budget = w->memory_budget_gb * 1e9;
    double sessions = kv_session > 0 && budget > (double)weights ? floor((budget - (double)weights) / kv_session) : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* Prefill throughput from steps with prefill (mixed steps counted whole: a prompt of hundreds
     * of tokens dominates the few decode tokens riding along); decode from decode-only steps. */
    double pre_s = rp->prefill_s + rp->mixed_s;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:i, s:f, s:f, s:i, s:I, s:i, s:i, s:f, s:f, s:f,"
        " s:{s:f, s:f, s:f, s:f, s:f}, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:f, s:f, s:f, s:I}, s:o, s:f}",
        "profile", w->path, "name", w->name, "clock", "simulated: each forward pass advances it by the calibrated step cost (step_cost, process CPU time / threads, min of repetitions), idle gaps skipped", "batching",
        w->batching == BATCH_STATIC ? "static" : "dynamic", "max_wait_ms", w->max_wait_ms, "max_batch", (int)w->max_batch, "context_scale", scale, "wall_seconds",
        wall, "context", llm_engine_config(e)->max_pos, "requests", (json_int_t)w->requests, "completed", (int)nd, "dropped", dropped, "mean_prompt_tokens", mean_p,
        "mean_output_tokens", mean_o, "simulated_seconds", t_end, "throughput", "prefill_tok_s", pre_s > 0 ? (double)rp->prefill_tokens / pre_s : 0,
        "decode_tok_s", rp->decode_s > 0 ? (double)rp->decode_tokens_pure / rp->decode_s : 0, "output_tok_s", t_end > 0 ? sum_o / t_end : 0, "requests_per_s",
        t_end > 0 ? (double)nd / t_end : 0, "total_tok_s", t_end > 0 ? (sum_p + sum_o) / t_end : 0, "ttft_ms", stats_summary(ttft, nd, 1000), "itl_ms",
        stats_summary(rp->itl, rp->n_itl, 1000), "e2e_ms", stats_summary(e2e, nd, 1000), "queue_wait_ms", stats_summary(qw, nd, 1000), "batch_size",
        batch_json(rp), "memory", "peak_rss_bytes", (json_int_t)ru.ru_maxrss * 1024, "weight_bytes", (json_int_t)weights, "kv_bytes_per_token", (double)kv_tok,
        "kv_bytes_per_session", kv_session, "budget_bytes", budget, "sessions_in_budget", (json_int_t)sessions, "step_cost",
        stepcost_json(&rp->cost), "forward_wall_seconds", rp->wall_forward_s);
    free(ttft);
    free(e2e);
    free(qw);
    return o;
}

smelt_err *replay_run(const workload_profile *w, llm_engine *e, json_t **out)
{
    *out = NULL;
    const smelt_llm_config *c = llm_engine_config(e);
    workload_request *specs;
    double scale;
    SMELT_TRY(workload_requests(w, c->max_pos, &specs, &scale));
    replay rp = {.w = w, .e = e, .n = (int)w->requests};
    rp.r = calloc((size_t)rp.n, sizeof *rp.r);
    long total_out = 0;
    for (int i = 0; i < rp.n; i++) total_out += specs[i].n_output;
    rp.itl = malloc((size_t)(total_out + 1) * sizeof *rp.itl);
    rp.batch_hist = calloc((size_t)w->max_batch + 1, sizeof *rp.batch_hist);
    llm_batch_item *items = malloc((size_t)w->max_batch * sizeof *items);
    request **who = malloc((size_t)w->max_batch * sizeof *who);
    float *logits = malloc((size_t)w->max_batch * c->vocab_size * sizeof *logits);
    smelt_err *err = rp.r && rp.itl && rp.batch_hist && items && who && logits ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    uint64_t s = w->seed ^ 0x5eedULL;
    for (int i = 0; !err && i < rp.n; i++) {
        request *q = &rp.r[i];
        q->spec = specs[i];
        q->arrived = w->arrival == ARRIVAL_POISSON;
        q->t_arrival = specs[i].arrival_s;
        if (!(q->prompt = malloc((size_t)q->spec.n_prompt * sizeof *q->prompt))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        /* id 0 is the end-of-text token of the bundled tokenizers: keep prompts free of it */
        for (int t = 0; !err && t < q->spec.n_prompt; t++) q->prompt[t] = 1 + (int32_t)(workload_rand(&s) % (uint64_t)(c->vocab_size - 1));
    }
    if (!err && w->arrival == ARRIVAL_CLOSED)
        for (long i = 0; i < w->concurrency; i++) release_closed(&rp, 0);
    if (!err) {
        double mean_p = 0;
        for (int i = 0; i < rp.n; i++) mean_p += specs[i].n_prompt;
        err = smelt_err_wrap(stepcost_calibrate(e, (int)(mean_p / rp.n), (int)w->max_batch, &rp.cost), "%s: calibrating the step cost", w->path);
    }
    double t0 = smelt_now();
    if (!err) {
        char label[96];
        snprintf(label, sizeof label, "replay %s", w->name);
        smelt_progress pg;
        smelt_progress_begin(&pg, label, rp.n);
        err = smelt_err_wrap(run_loop(&rp, items, who, logits, &pg), "%s: replay", w->path);
        smelt_progress_end(&pg);
    }
    if (!err && !(*out = summarize(&rp, scale, smelt_now() - t0))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; rp.r && i < rp.n; i++) {
        llm_seq_free(rp.r[i].seq);
        free(rp.r[i].prompt);
    }
    free(rp.r);
    free(rp.itl);
    free(rp.batch_hist);
    free(items);
    free(who);
    free(logits);
    free(specs);
    return err;
}
