/* Runs a suite's domains and canaries (see quality.h). */
#include "evals/quality.h"

#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "core/log.h"
#include "evals/agreement.h"
#include "evals/canary.h"
#include "evals/cascade.h"

static void show_progress(void *ctx, int64_t done, int64_t total)
{
    (void)total;
    smelt_progress_update(ctx, done);
}

static smelt_err *run_domain(const eval_suite *s, const eval_domain *d, const eval_model *cand, const eval_model *ref, json_t **out)
{
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    agree_result r;
    smelt_err *err = smelt_read_file(d->file, (size_t)1 << 32, &text, &len);
    if (!err) err = smelt_err_wrap(ppl_tokens_from_text(cand->tok, text, len, cand->eos_id, &ids, &n_ids), "%s", d->file);
    if (!err) {
        char label[96];
        snprintf(label, sizeof label, "eval %s", d->name);
        int64_t total = (int64_t)(n_ids / (size_t)s->window);
        smelt_progress p;
        smelt_progress_begin(&p, label, d->max_windows > 0 && d->max_windows < total ? d->max_windows : total);
        bool agree = d->kl || d->top1;
        double t0 = smelt_now();
        agree_window *aw = NULL;
        bool cascade = s->has_cascade && ref;
        err = smelt_err_wrap(agree_score_windows(cand->engine, (agree || cascade) && ref ? ref->engine : NULL, ids, n_ids, s->window, d->max_windows, show_progress,
                                                 &p, &r, cascade ? &aw : NULL),
                             "%s: domain '%s' (%s)", s->path, d->name, d->file);
        smelt_progress_end(&p);
        if (!err) {
            json_t *o = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "file", d->file, "window", s->window, "tokens", (json_int_t)n_ids, "windows",
                                  (json_int_t)r.windows, "windows_total", (json_int_t)r.windows_total, "tokens_scored", (json_int_t)r.tokens_scored,
                                  "mean_nll", r.mean_nll, "ppl", r.ppl, "seconds", smelt_now() - t0);
            if (agree && ref) {
                json_object_set_new(o, "reference_mean_nll", json_real(r.ref_mean_nll));
                json_object_set_new(o, "reference_ppl", json_real(r.ref_ppl));
                json_object_set_new(o, "ppl_increase_pct", json_real((r.ppl / r.ref_ppl - 1) * 100));
                if (d->kl) json_object_set_new(o, "kl", json_real(r.kl));
                if (d->top1) json_object_set_new(o, "top1", json_real(r.top1));
            }
            if (aw) json_object_set_new(o, "cascade", cascade_sweep(&s->cascade, aw, (int)r.windows, s->window));
            *out = o;
        }
        free(aw);
    }
    free(ids);
    free(text);
    return err;
}

static smelt_err *run_canary(const eval_suite *s, const eval_canary *c, const eval_model *cand, json_t **out)
{
    int32_t *prompt = NULL, *got = malloc((size_t)c->n_expected * sizeof *got);
    size_t n_prompt = 0;
    smelt_err *err = got ? smelt_tokenizer_encode(cand->tok, c->prompt, strlen(c->prompt), &prompt, &n_prompt) : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!err) err = canary_generate(cand->engine, prompt, (int)n_prompt, c->n_expected, got);
    if (!err) {
        int match = canary_matching_prefix(got, c->expected_ids, c->n_expected);
        json_t *out_ids = json_array(), *exp_ids = json_array();
        for (int i = 0; i < c->n_expected; i++) {
            json_array_append_new(out_ids, json_integer(got[i]));
            json_array_append_new(exp_ids, json_integer(c->expected_ids[i]));
        }
        *out = json_pack("{s:s, s:s, s:o, s:o, s:i, s:i, s:b, s:s}", "name", c->name, "prompt", c->prompt, "expected_ids", exp_ids, "output_ids", out_ids,
                         "first_n", c->first_n, "matching_tokens", match, "passed", match >= c->first_n, "source", c->source);
    }
    free(prompt);
    free(got);
    return smelt_err_wrap(err, "%s: canary '%s'", s->path, c->name);
}

smelt_err *quality_run(const eval_suite *s, const eval_model *cand, const eval_model *ref, json_t **domains, json_t **canaries)
{
    *domains = json_object();
    *canaries = json_array();
    smelt_err *err = NULL;
    for (int i = 0; !err && i < s->n_domains; i++) {
        json_t *d = NULL;
        err = run_domain(s, &s->domains[i], cand, ref, &d);
        if (!err) json_object_set_new(*domains, s->domains[i].name, d);
    }
    for (int i = 0; !err && i < s->n_canaries; i++) {
        json_t *c = NULL;
        err = run_canary(s, &s->canaries[i], cand, &c);
        if (!err) json_array_append_new(*canaries, c);
    }
    if (err) {
        json_decref(*domains);
        json_decref(*canaries);
        *domains = *canaries = NULL;
    }
    return err;
}
