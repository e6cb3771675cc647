/* Suite files: parsing and validation (format in suite.h and docs/results.md). */
#define _POSIX_C_SOURCE 200809L
#include "evals/suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "evals/jfield.h"

char *suite_resolve_path(const char *base_file, const char *rel)
{
    if (rel[0] == '/') return strdup(rel);
    char *dir = strdup(base_file);
    if (!dir) return NULL;
    char *slash = strrchr(dir, '/');
    char *p;
    if (slash) {
        *slash = 0;
        p = smelt_path_join(dir, rel);
    } else {
        p = strdup(rel);
    }
    free(dir);
    return p;
}

static smelt_err *dup_or_nomem(const char *s, char **out)
{
    *out = strdup(s);
    return *out ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}

static smelt_err *resolve_existing(const char *file, const char *parent, const char *key, const char *rel, const char *what, char **out)
{
    *out = suite_resolve_path(file, rel);
    if (!*out) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!smelt_file_exists(*out)) return SMELT_ERR(SMELT_E_INVALID, "%s: '%s.%s': expected %s, '%s' does not exist", file, parent, key, what, *out);
    return NULL;
}

/* A "task": "classify" entry: labelled examples (IDX pair or CSV) and the input transform. */
static smelt_err *parse_classify(const char *file, const char *parent, json_t *d, eval_domain *dom)
{
    static const char *const keys[] = {"name", "task", "description", "images", "labels", "csv", "scale", "mean", "std", "batch", "max_examples", "input", "metrics", NULL};
    SMELT_TRY(jf_keys(file, parent, d, keys));
    eval_classify *c = &dom->cls;
    const char *name, *images = NULL, *labels = NULL, *csv = NULL, *input = NULL;
    long batch = 256, maxe = 0;
    json_t *metrics;
    c->scale = 1, c->mean = 0, c->std = 1;
    SMELT_TRY(jf_string(file, parent, d, "name", true, &name));
    SMELT_TRY(jf_string(file, parent, d, "images", false, &images));
    SMELT_TRY(jf_string(file, parent, d, "labels", false, &labels));
    SMELT_TRY(jf_string(file, parent, d, "csv", false, &csv));
    SMELT_TRY(jf_string(file, parent, d, "input", false, &input));
    SMELT_TRY(jf_number(file, parent, d, "scale", false, -1e30, 1e30, &c->scale));
    SMELT_TRY(jf_number(file, parent, d, "mean", false, -1e30, 1e30, &c->mean));
    SMELT_TRY(jf_number(file, parent, d, "std", false, 1e-30, 1e30, &c->std));
    SMELT_TRY(jf_int(file, parent, d, "batch", false, 1, 1 << 20, &batch));
    SMELT_TRY(jf_int(file, parent, d, "max_examples", false, 0, 1L << 40, &maxe));
    SMELT_TRY(jf_array(file, parent, d, "metrics", false, &metrics));
    if (!csv == !images || !images != !labels)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected either 'images' and 'labels' (IDX files) or 'csv' (label,feature,... lines)", file, parent);
    c->batch = (int)batch;
    c->max_examples = (int)(maxe > (1L << 30) ? 1L << 30 : maxe);
    c->agreement = dom->kl = true;
    if (metrics) {
        c->agreement = dom->kl = false;
        size_t i;
        json_t *m;
        json_array_foreach(metrics, i, m)
        {
            const char *s = json_string_value(m);
            if (s && strcmp(s, "accuracy") == 0) continue;
            if (s && strcmp(s, "agreement") == 0) c->agreement = true;
            else if (s && strcmp(s, "kl") == 0) dom->kl = true;
            else
                return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.metrics[%zu]': expected \"accuracy\", \"agreement\" or \"kl\", found %s%s%s", file, parent, i,
                                 s ? "\"" : "", s ? s : jf_type_name(m), s ? "\"" : "");
        }
    }
    SMELT_TRY(dup_or_nomem(name, &dom->name));
    if (input) SMELT_TRY(dup_or_nomem(input, &c->input));
    c->csv = csv != NULL;
    if (csv) return resolve_existing(file, parent, "csv", csv, "a readable CSV file", &dom->file);
    SMELT_TRY(resolve_existing(file, parent, "images", images, "a readable IDX file", &dom->file));
    return resolve_existing(file, parent, "labels", labels, "a readable IDX file", &c->labels);
}

static smelt_err *parse_domain(const char *file, const char *parent, json_t *d, eval_domain *dom)
{
    static const char *const keys[] = {"name", "task", "file", "max_windows", "metrics", "description", NULL};
    if (!json_is_object(d)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected an object, found %s", file, parent, jf_type_name(d));
    const char *task = "language";
    SMELT_TRY(jf_string(file, parent, d, "task", false, &task));
    if (strcmp(task, "classify") == 0) {
        dom->task = EVAL_TASK_CLASSIFY;
        return parse_classify(file, parent, d, dom);
    }
    if (strcmp(task, "language") != 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.task': expected \"language\" (the default) or \"classify\", found \"%s\"", file, parent, task);
    SMELT_TRY(jf_keys(file, parent, d, keys));
    const char *name, *text;
    long maxw = 0;
    json_t *metrics;
    SMELT_TRY(jf_string(file, parent, d, "name", true, &name));
    SMELT_TRY(jf_string(file, parent, d, "file", true, &text));
    SMELT_TRY(jf_int(file, parent, d, "max_windows", false, 0, 1L << 30, &maxw));
    SMELT_TRY(jf_array(file, parent, d, "metrics", false, &metrics));
    dom->max_windows = (int)maxw;
    dom->kl = dom->top1 = true;
    if (metrics) {
        dom->kl = dom->top1 = false;
        size_t i;
        json_t *m;
        json_array_foreach(metrics, i, m)
        {
            const char *s = json_string_value(m);
            if (s && strcmp(s, "perplexity") == 0) continue;
            if (s && strcmp(s, "kl") == 0) dom->kl = true;
            else if (s && strcmp(s, "top1") == 0) dom->top1 = true;
            else
                return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.metrics[%zu]': expected \"perplexity\", \"kl\" or \"top1\", found %s%s%s", file, parent, i,
                                 s ? "\"" : "", s ? s : jf_type_name(m), s ? "\"" : "");
        }
    }
    SMELT_TRY(dup_or_nomem(name, &dom->name));
    dom->file = suite_resolve_path(file, text);
    if (!dom->file) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!smelt_file_exists(dom->file))
        return SMELT_ERR(SMELT_E_INVALID, "%s: '%s.file': expected a readable text file, '%s' does not exist", file, parent, dom->file);
    return NULL;
}

static smelt_err *parse_canary(const char *file, const char *parent, json_t *c, eval_canary *can)
{
    static const char *const keys[] = {"name", "prompt", "expected_ids", "first_n", "source", NULL};
    if (!json_is_object(c)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected an object, found %s", file, parent, jf_type_name(c));
    SMELT_TRY(jf_keys(file, parent, c, keys));
    const char *name, *prompt, *source = "";
    json_t *ids;
    SMELT_TRY(jf_string(file, parent, c, "name", true, &name));
    SMELT_TRY(jf_string(file, parent, c, "prompt", true, &prompt));
    SMELT_TRY(jf_string(file, parent, c, "source", false, &source));
    SMELT_TRY(jf_array(file, parent, c, "expected_ids", true, &ids));
    size_t n = json_array_size(ids);
    if (n == 0 || n > 65536) return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.expected_ids': expected 1 to 65536 token ids, found %zu", file, parent, n);
    long first_n = (long)n;
    SMELT_TRY(jf_int(file, parent, c, "first_n", false, 1, (long)n, &first_n));
    can->expected_ids = malloc(n * sizeof *can->expected_ids);
    if (!can->expected_ids) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ids, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.expected_ids[%zu]': expected a token id (integer >= 0), found %s", file, parent, i, jf_type_name(v));
        can->expected_ids[i] = (int32_t)json_integer_value(v);
    }
    can->n_expected = (int)n;
    can->first_n = (int)first_n;
    SMELT_TRY(dup_or_nomem(name, &can->name));
    SMELT_TRY(dup_or_nomem(prompt, &can->prompt));
    return dup_or_nomem(source, &can->source);
}

static smelt_err *parse_cascade(eval_suite *s, json_t *c)
{
    static const char *const keys[] = {"confidence", "thresholds", NULL};
    const char *f = s->path, *conf = "max_prob";
    json_t *th;
    SMELT_TRY(jf_keys(f, "cascade", c, keys));
    SMELT_TRY(jf_string(f, "cascade", c, "confidence", false, &conf));
    if (strcmp(conf, "entropy") == 0) s->cascade.entropy = true;
    else if (strcmp(conf, "max_prob") != 0) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'cascade.confidence': expected \"max_prob\" or \"entropy\", found \"%s\"", f, conf);
    SMELT_TRY(jf_array(f, "cascade", c, "thresholds", true, &th));
    size_t n = json_array_size(th);
    if (n == 0 || n > 1000) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'cascade.thresholds': expected 1 to 1000 numbers, found %zu", f, n);
    if (!s->reference) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'cascade': a cascade falls back to the 'reference' model, expected one at the top level", f);
    if (!(s->cascade.thresholds = malloc(n * sizeof(double)))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(th, i);
        if (!json_is_number(v) || json_number_value(v) < 0)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'cascade.thresholds[%zu]': expected a number >= 0, found %s", f, i, jf_type_name(v));
        s->cascade.thresholds[i] = json_number_value(v);
    }
    s->cascade.n_thresholds = (int)n;
    s->has_cascade = true;
    return NULL;
}

static smelt_err *parse(eval_suite *s, json_t *root)
{
    static const char *const keys[] = {"name", "description", "reference", "window", "domains", "canaries", "cascade", NULL};
    const char *f = s->path, *name, *ref = NULL;
    long window = 256;
    json_t *domains, *canaries;
    SMELT_TRY(jf_keys(f, "", root, keys));
    SMELT_TRY(jf_string(f, "", root, "name", true, &name));
    SMELT_TRY(jf_string(f, "", root, "reference", false, &ref));
    SMELT_TRY(jf_int(f, "", root, "window", false, 2, 1 << 20, &window));
    SMELT_TRY(jf_array(f, "", root, "domains", true, &domains));
    SMELT_TRY(jf_array(f, "", root, "canaries", false, &canaries));
    if (json_array_size(domains) == 0 || json_array_size(domains) > 1024)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'domains': expected 1 to 1024 domains, found %zu", f, json_array_size(domains));
    s->window = (int)window;
    SMELT_TRY(dup_or_nomem(name, &s->name));
    if (ref) {
        s->reference = suite_resolve_path(f, ref);
        if (!s->reference) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    s->domains = calloc(json_array_size(domains), sizeof *s->domains);
    if (!s->domains) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    size_t i;
    json_t *d;
    char parent[64];
    json_array_foreach(domains, i, d)
    {
        snprintf(parent, sizeof parent, "domains[%zu]", i);
        s->n_domains++;
        SMELT_TRY(parse_domain(f, parent, d, &s->domains[i]));
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->domains[j].name, s->domains[i].name) == 0)
                return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.name': domain '%s' appears twice, expected unique names", f, parent, s->domains[i].name);
        if (i == 0) s->task = s->domains[0].task;
        else if (s->domains[i].task != s->task)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.task': \"%s\", expected \"%s\" like domains[0] (a suite measures one kind of model)", f, parent,
                             s->domains[i].task == EVAL_TASK_CLASSIFY ? "classify" : "language", s->task == EVAL_TASK_CLASSIFY ? "classify" : "language");
        if (s->task == EVAL_TASK_CLASSIFY) {
            if (!s->reference && (s->domains[i].kl || s->domains[i].cls.agreement))
                return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.metrics': agreement and kl need a 'reference' model, expected one at the top level (or metrics [\"accuracy\"])",
                                 f, parent);
        } else if (!s->reference && (s->domains[i].kl || s->domains[i].top1))
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s.metrics': kl and top1 need a 'reference' model, expected one at the top level (or metrics [\"perplexity\"])", f,
                             parent);
    }
    json_t *cascade;
    SMELT_TRY(jf_object(f, "", root, "cascade", false, &cascade));
    if (s->task == EVAL_TASK_CLASSIFY && (cascade || canaries))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': a classifier suite (\"task\": \"classify\") has no %s, expected only 'domains'", f, cascade ? "cascade" : "canaries",
                         cascade ? "cascade" : "canaries");
    if (cascade) SMELT_TRY(parse_cascade(s, cascade));
    if (canaries) {
        s->canaries = calloc(json_array_size(canaries) + 1, sizeof *s->canaries);
        if (!s->canaries) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        json_t *c;
        json_array_foreach(canaries, i, c)
        {
            snprintf(parent, sizeof parent, "canaries[%zu]", i);
            s->n_canaries++;
            SMELT_TRY(parse_canary(f, parent, c, &s->canaries[i]));
        }
    }
    return NULL;
}

smelt_err *suite_load(const char *path, eval_suite **out)
{
    *out = NULL;
    eval_suite *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    char *bytes = NULL;
    size_t len = 0;
    smelt_err *err = smelt_read_file(path, (size_t)64 << 20, &bytes, &len);
    if (!err) smelt_sha256_hex(bytes, len, s->sha256);
    free(bytes);
    json_t *root = NULL;
    if (!err) err = jf_load(path, &root);
    if (!err) err = parse(s, root);
    json_decref(root);
    if (err) {
        suite_free(s);
        return err;
    }
    *out = s;
    return NULL;
}

void suite_free(eval_suite *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_domains; i++) {
        free(s->domains[i].name);
        free(s->domains[i].file);
        free(s->domains[i].cls.labels);
        free(s->domains[i].cls.input);
    }
    for (int i = 0; i < s->n_canaries; i++) {
        free(s->canaries[i].name);
        free(s->canaries[i].prompt);
        free(s->canaries[i].expected_ids);
        free(s->canaries[i].source);
    }
    free(s->domains);
    free(s->canaries);
    free(s->cascade.thresholds);
    free(s->reference);
    free(s->name);
    free(s->path);
    free(s);
}
