/* Workload profile files and request generation (see workload.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/rng.h"
#include "evals/workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evals/jfield.h"

uint64_t workload_rand(uint64_t *s) { return smelt_splitmix64(s); }

double workload_uniform(uint64_t *s) { return (double)(workload_rand(s) >> 11) * 0x1.0p-53; }

static smelt_err *parse_length(const char *file, const char *key, const json_t *root, length_spec *l)
{
    static const char *const keys[] = {"dist", "mean", "std", "min", "max", NULL};
    json_t *o;
    SMELT_TRY(jf_object(file, "", root, key, true, &o));
    SMELT_TRY(jf_keys(file, key, o, keys));
    const char *dist = "normal";
    SMELT_TRY(jf_string(file, key, o, "dist", false, &dist));
    if (strcmp(dist, "fixed") == 0) l->dist = DIST_FIXED;
    else if (strcmp(dist, "uniform") == 0) l->dist = DIST_UNIFORM;
    else if (strcmp(dist, "normal") == 0) l->dist = DIST_NORMAL;
    else return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.dist': expected \"fixed\", \"uniform\" or \"normal\", found \"%s\"", file, key, dist);
    l->std = 0;
    SMELT_TRY(jf_number(file, key, o, "mean", true, 1, 1e7, &l->mean));
    SMELT_TRY(jf_number(file, key, o, "std", l->dist == DIST_NORMAL, 0, 1e7, &l->std));
    l->min = 1;
    l->max = (long)(l->mean * 4 + 1);
    SMELT_TRY(jf_int(file, key, o, "min", l->dist == DIST_UNIFORM, 1, 10000000, &l->min));
    SMELT_TRY(jf_int(file, key, o, "max", l->dist == DIST_UNIFORM, 1, 10000000, &l->max));
    if (l->min > l->max || l->mean < (double)l->min || l->mean > (double)l->max)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected min <= mean <= max, found min %ld, mean %g, max %ld", file, key, l->min, l->mean, l->max);
    return NULL;
}

static smelt_err *parse(workload_profile *w, const json_t *root)
{
    static const char *const keys[] = {"name",   "description", "prompt_tokens", "output_tokens",   "arrival",          "requests", "max_duration_s",
                                       "batching", "fit_context", "memory_budget_gb", "monthly_requests", "seed",     NULL};
    static const char *const akeys[] = {"process", "rate_per_s", "concurrency", NULL};
    static const char *const bkeys[] = {"mode", "max_batch", "max_wait_ms", NULL};
    const char *f = w->path, *name, *process, *mode = "dynamic";
    json_t *arr, *bat;
    SMELT_TRY(jf_keys(f, "", root, keys));
    SMELT_TRY(jf_string(f, "", root, "name", true, &name));
    if (!(w->name = strdup(name))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    SMELT_TRY(parse_length(f, "prompt_tokens", root, &w->prompt));
    SMELT_TRY(parse_length(f, "output_tokens", root, &w->output));
    SMELT_TRY(jf_object(f, "", root, "arrival", true, &arr));
    SMELT_TRY(jf_keys(f, "arrival", arr, akeys));
    SMELT_TRY(jf_string(f, "arrival", arr, "process", true, &process));
    if (strcmp(process, "poisson") == 0) {
        w->arrival = ARRIVAL_POISSON;
        SMELT_TRY(jf_number(f, "arrival", arr, "rate_per_s", true, 1e-6, 1e6, &w->rate_per_s));
    } else if (strcmp(process, "closed") == 0) {
        w->arrival = ARRIVAL_CLOSED;
        SMELT_TRY(jf_int(f, "arrival", arr, "concurrency", true, 1, 4096, &w->concurrency));
    } else {
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'arrival.process': expected \"poisson\" or \"closed\", found \"%s\"", f, process);
    }
    SMELT_TRY(jf_int(f, "", root, "requests", true, 1, 1000000, &w->requests));
    w->max_duration_s = 600;
    SMELT_TRY(jf_number(f, "", root, "max_duration_s", false, 0.001, 1e7, &w->max_duration_s));
    SMELT_TRY(jf_object(f, "", root, "batching", true, &bat));
    SMELT_TRY(jf_keys(f, "batching", bat, bkeys));
    SMELT_TRY(jf_string(f, "batching", bat, "mode", false, &mode));
    if (strcmp(mode, "static") == 0) w->batching = BATCH_STATIC;
    else if (strcmp(mode, "dynamic") == 0) w->batching = BATCH_DYNAMIC;
    else return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'batching.mode': expected \"static\" or \"dynamic\", found \"%s\"", f, mode);
    SMELT_TRY(jf_int(f, "batching", bat, "max_batch", true, 1, 1024, &w->max_batch));
    w->max_wait_ms = 0;
    SMELT_TRY(jf_number(f, "batching", bat, "max_wait_ms", false, 0, 1e7, &w->max_wait_ms));
    w->fit_context = true;
    SMELT_TRY(jf_bool(f, "", root, "fit_context", false, &w->fit_context));
    w->memory_budget_gb = 8;
    SMELT_TRY(jf_number(f, "", root, "memory_budget_gb", false, 1e-6, 1e7, &w->memory_budget_gb));
    w->monthly_requests = 1e6;
    SMELT_TRY(jf_number(f, "", root, "monthly_requests", false, 1, 1e15, &w->monthly_requests));
    long seed = 1;
    SMELT_TRY(jf_int(f, "", root, "seed", false, 0, 1L << 62, &seed));
    w->seed = (uint64_t)seed;
    return NULL;
}

smelt_err *workload_load(const char *path, workload_profile **out)
{
    *out = NULL;
    workload_profile *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    json_t *root;
    smelt_err *err = jf_load(path, &root);
    if (!err) err = parse(w, root);
    json_decref(root);
    if (err) {
        workload_free(w);
        return err;
    }
    *out = w;
    return NULL;
}

void workload_free(workload_profile *w)
{
    if (!w) return;
    free(w->path);
    free(w->name);
    free(w);
}

static double draw(const length_spec *l, uint64_t *s)
{
    double v = l->mean;
    if (l->dist == DIST_UNIFORM) v = (double)l->min + workload_uniform(s) * (double)(l->max - l->min + 1);
    else if (l->dist == DIST_NORMAL) { /* Box-Muller */
        double u1 = workload_uniform(s), u2 = workload_uniform(s);
        v = l->mean + l->std * sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
    }
    v = floor(v);
    return v < (double)l->min ? (double)l->min : v > (double)l->max ? (double)l->max : v;
}

smelt_err *workload_requests(const workload_profile *w, int max_pos, workload_request **out, double *scale)
{
    *out = NULL;
    *scale = 1;
    /* The scale that makes the longest possible request fit, so every request is scaled alike. */
    double longest = (double)(w->prompt.max + w->output.max);
    if (longest > max_pos) {
        if (!w->fit_context)
            return SMELT_ERR(SMELT_E_INVALID, "%s: prompt_tokens.max + output_tokens.max = %.0f exceed the model's context of %d tokens (set \"fit_context\": true to scale them)",
                             w->path, longest, max_pos);
        *scale = (double)max_pos / longest;
    }
    workload_request *r = calloc((size_t)w->requests, sizeof *r);
    if (!r) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    uint64_t s = w->seed;
    double t = 0;
    for (long i = 0; i < w->requests; i++) {
        if (w->arrival == ARRIVAL_POISSON) {
            if (i > 0) t += -log(1 - workload_uniform(&s)) / w->rate_per_s;
            r[i].arrival_s = t;
        }
        double p = floor(draw(&w->prompt, &s) * *scale), o = floor(draw(&w->output, &s) * *scale);
        r[i].n_prompt = p < 1 ? 1 : (int)p;
        r[i].n_output = o < 1 ? 1 : (int)o;
    }
    *out = r;
    return NULL;
}
