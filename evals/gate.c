/* Policy files and the checks of the gate (see gate.h). */
#define _POSIX_C_SOURCE 200809L
#include "evals/gate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "evals/jfield.h"

/* The limits a policy may set: the key, where the number sits in a result, whether it is a max. */
typedef struct {
    const char *key;    /* policy key */
    const char *metric; /* check name */
    bool per_domain, is_max;
    const char *section, *field, *sub; /* result.section[.field[.sub]] for whole-artifact checks */
    double lo, hi;                     /* allowed limit values */
} limit_def;

static const limit_def LIMITS[] = {
    {"max_ppl_increase_pct", "ppl_increase_pct", true, true, NULL, NULL, NULL, -100, 1e9},
    {"max_kl", "kl", true, true, NULL, NULL, NULL, 0, 1e9},
    {"min_top1", "top1", true, false, NULL, NULL, NULL, 0, 1},
    {"max_accuracy_drop_pts", "accuracy_drop_pts", true, true, NULL, NULL, NULL, -100, 100},
    {"min_accuracy", "accuracy", true, false, NULL, NULL, NULL, 0, 1},
    {"min_agreement", "agreement", true, false, NULL, NULL, NULL, 0, 1},
    {"min_canary_pass_rate", "canary_pass_rate", false, false, "canary_pass_rate", NULL, NULL, 0, 1},
    {"max_ttft_p95_ms", "ttft_p95_ms", false, true, "workload", "ttft_ms", "p95", 0, 1e12},
    {"max_itl_p95_ms", "itl_p95_ms", false, true, "workload", "itl_ms", "p95", 0, 1e12},
    {"max_e2e_p95_ms", "e2e_p95_ms", false, true, "workload", "e2e_ms", "p95", 0, 1e12},
    {"max_usd_per_1m_output_tokens", "usd_per_1m_output_tokens", false, true, "cost", "usd_per_1m_output_tokens", NULL, 0, 1e12},
    {"max_usd_per_1m_input_tokens", "usd_per_1m_input_tokens", false, true, "cost", "usd_per_1m_input_tokens", NULL, 0, 1e12},
};
#define N_LIMITS (int)(sizeof LIMITS / sizeof LIMITS[0])

typedef struct {
    char *name;
    double limit[N_LIMITS]; /* NAN: not overridden */
} domain_override;

struct gate_policy {
    char *name;
    double limit[N_LIMITS]; /* NAN: no such check */
    domain_override *over;
    int n_over;
};

const char *policy_name(const gate_policy *p) { return p->name; }

static smelt_err *parse_limits(const char *file, const char *parent, json_t *obj, bool domain_only, double *limit)
{
    const char *keys[N_LIMITS + 1];
    int nk = 0;
    for (int i = 0; i < N_LIMITS; i++)
        if (!domain_only || LIMITS[i].per_domain) keys[nk++] = LIMITS[i].key;
    keys[nk] = NULL;
    SMELT_TRY(jf_keys(file, parent, obj, keys));
    for (int i = 0; i < N_LIMITS; i++) {
        limit[i] = NAN;
        if (domain_only && !LIMITS[i].per_domain) continue;
        SMELT_TRY(jf_number(file, parent, obj, LIMITS[i].key, false, LIMITS[i].lo, LIMITS[i].hi, &limit[i]));
    }
    return NULL;
}

static smelt_err *parse_policy(const char *file, json_t *root, gate_policy *p)
{
    static const char *const keys[] = {"name", "description", "checks", "domains", NULL};
    const char *name;
    json_t *checks, *domains;
    SMELT_TRY(jf_keys(file, "", root, keys));
    SMELT_TRY(jf_string(file, "", root, "name", true, &name));
    SMELT_TRY(jf_object(file, "", root, "checks", true, &checks));
    SMELT_TRY(jf_object(file, "", root, "domains", false, &domains));
    if (!(p->name = strdup(name))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    SMELT_TRY(parse_limits(file, "checks", checks, false, p->limit));
    bool any = false;
    for (int i = 0; i < N_LIMITS; i++) any |= !isnan(p->limit[i]);
    if (!any) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'checks': no limits, expected at least one of 'max_ppl_increase_pct', 'max_kl', 'min_top1', ...", file);
    if (domains) {
        p->over = calloc(json_object_size(domains) + 1, sizeof *p->over);
        if (!p->over) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        const char *dn;
        json_t *d;
        json_object_foreach(domains, dn, d)
        {
            char parent[160];
            snprintf(parent, sizeof parent, "domains.%s", dn);
            if (!json_is_object(d)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected an object of limits, found %s", file, parent, jf_type_name(d));
            domain_override *o = &p->over[p->n_over++];
            if (!(o->name = strdup(dn))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            SMELT_TRY(parse_limits(file, parent, d, true, o->limit));
        }
    }
    return NULL;
}

smelt_err *policy_load(const char *path, gate_policy **out)
{
    *out = NULL;
    gate_policy *p = calloc(1, sizeof *p);
    if (!p) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    json_t *root;
    smelt_err *err = jf_load(path, &root);
    if (!err) err = parse_policy(path, root, p);
    json_decref(root);
    if (err) {
        policy_free(p);
        return err;
    }
    *out = p;
    return NULL;
}

void policy_free(gate_policy *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_over; i++) free(p->over[i].name);
    free(p->over);
    free(p->name);
    free(p);
}

/* The number at result.a[.b[.c]] (NULL members skipped); false when absent or not a number. */
static bool get_num(const json_t *root, const char *a, const char *b, const char *c, double *out)
{
    const json_t *v = json_object_get(root, a);
    if (b) v = json_object_get(v, b);
    if (c) v = json_object_get(v, c);
    if (!json_is_number(v)) return false;
    *out = json_number_value(v);
    return true;
}

static bool passes(double v, double limit, bool is_max)
{
    /* a relative tolerance of 1e-12 so a value equal to its limit after rounding passes */
    double tol = 1e-12 * fmax(1, fabs(limit));
    return is_max ? v <= limit + tol : v >= limit - tol;
}

/* Whether a result domain is a classifier's ("task": "classify"): its size is "examples" and its
 * relative check is the accuracy drop; a language model's are "windows" and the ppl increase. */
static bool is_classify(const json_t *d)
{
    const char *t = json_string_value(json_object_get(d, "task"));
    return t && strcmp(t, "classify") == 0;
}

/* The relative checks: the candidate's ppl (accuracy) against the baseline's when given, else
 * against the suite's reference on the same windows (examples). */
static void relative_check(gate_check *c, const json_t *d, const json_t *bd, bool ppl_check)
{
    const char *key = ppl_check ? "ppl" : "accuracy", *ref_key = ppl_check ? "reference_ppl" : "reference_accuracy";
    double v = 0, ref = 0;
    bool has_v = get_num(d, key, NULL, NULL, &v);
    bool has_ref = bd ? get_num(bd, key, NULL, NULL, &ref) : get_num(d, ref_key, NULL, NULL, &ref);
    c->measured = has_v && has_ref && (!ppl_check || ref > 0);
    if (!c->measured) return;
    c->value = ppl_check ? (v / ref - 1) * 100 : (ref - v) * 100;
    c->has_baseline = true;
    c->baseline = 0;
    c->delta = c->value;
    if (ppl_check) snprintf(c->detail, sizeof c->detail, "ppl %.4f vs %s %.4f (%+.3f%%)", v, bd ? "baseline" : "reference", ref, c->value);
    else snprintf(c->detail, sizeof c->detail, "accuracy %.4f vs %s %.4f (%+.3f points)", v, bd ? "baseline" : "reference", ref, -c->value);
}

static smelt_err *domain_checks(const gate_policy *p, const char *dname, const json_t *d, const json_t *bd, const char *rpath, const char *bpath,
                                gate_check *out, int *n)
{
    const domain_override *o = NULL;
    for (int i = 0; i < p->n_over; i++)
        if (strcmp(p->over[i].name, dname) == 0) o = &p->over[i];
    if (!json_is_object(d)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'domains.%s': expected an object, found %s", rpath, dname, jf_type_name(d));
    bool cls = is_classify(d);
    const char *size_key = cls ? "examples" : "windows", *main_key = cls ? "accuracy" : "ppl";
    if (bd) {
        double w = -1, bw = -2;
        get_num(d, size_key, NULL, NULL, &w);
        get_num(bd, size_key, NULL, NULL, &bw);
        const char *f = json_string_value(json_object_get(d, "file")), *bf = json_string_value(json_object_get(bd, "file"));
        if (w != bw || cls != is_classify(bd) || !f || !bf || strcmp(smelt_path_base(f), smelt_path_base(bf)) != 0)
            return SMELT_ERR(SMELT_E_INVALID, "%s: domain '%s' was measured on %g %s of %s, %s on %g %s of %s: expected the same suite", bpath, dname, bw, size_key,
                             bf ? bf : "?", rpath, w, size_key, f ? f : "?");
        double tmp;
        if (!get_num(bd, main_key, NULL, NULL, &tmp)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'domains.%s.%s': missing, expected a number", bpath, dname, main_key);
    }
    for (int i = 0; i < N_LIMITS; i++) {
        if (!LIMITS[i].per_domain) continue;
        double limit = o && !isnan(o->limit[i]) ? o->limit[i] : p->limit[i];
        if (isnan(limit)) continue;
        gate_check *c = &out[(*n)++];
        memset(c, 0, sizeof *c);
        snprintf(c->domain, sizeof c->domain, "%s", dname);
        snprintf(c->metric, sizeof c->metric, "%s", LIMITS[i].metric);
        c->limit = limit;
        c->is_max = LIMITS[i].is_max;
        bool ppl_check = strcmp(LIMITS[i].metric, "ppl_increase_pct") == 0;
        if (ppl_check || strcmp(LIMITS[i].metric, "accuracy_drop_pts") == 0) {
            relative_check(c, d, bd, ppl_check);
        } else {
            c->measured = get_num(d, LIMITS[i].metric, NULL, NULL, &c->value);
            if (bd && get_num(bd, LIMITS[i].metric, NULL, NULL, &c->baseline)) {
                c->has_baseline = true;
                c->delta = c->value - c->baseline;
            }
            if (c->measured) snprintf(c->detail, sizeof c->detail, "%s %.6g", LIMITS[i].metric, c->value);
        }
        if (!c->measured) snprintf(c->detail, sizeof c->detail, "not measured: the result has no %s for domain '%s'", LIMITS[i].metric, dname);
        c->pass = c->measured && passes(c->value, c->limit, c->is_max);
    }
    return NULL;
}

smelt_err *gate_evaluate(const gate_policy *p, const json_t *result, const char *rpath, const json_t *baseline, const char *bpath, gate_check **checks,
                         int *n_checks)
{
    *checks = NULL;
    *n_checks = 0;
    const json_t *domains = json_object_get(result, "domains");
    if (!json_is_object(domains)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'domains': expected an object (a smelt eval result), found %s", rpath, jf_type_name(domains));
    const json_t *bdomains = baseline ? json_object_get(baseline, "domains") : NULL;
    if (baseline && !json_is_object(bdomains))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'domains': expected an object (a smelt eval result), found %s", bpath, jf_type_name(bdomains));
    size_t cap = (json_object_size(domains) + (size_t)p->n_over + 1) * N_LIMITS;
    gate_check *c = calloc(cap, sizeof *c);
    if (!c) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    int n = 0;
    smelt_err *err = NULL;
    const char *dn;
    json_t *d;
    json_object_foreach((json_t *)domains, dn, d)
    {
        const json_t *bd = NULL;
        if (baseline && !(bd = json_object_get(bdomains, dn))) {
            err = SMELT_ERR(SMELT_E_INVALID, "%s: no domain '%s', which %s measured: expected a baseline from the same suite", bpath, dn, rpath);
            break;
        }
        if ((err = domain_checks(p, dn, d, bd, rpath, bpath, c, &n))) break;
    }
    /* A domain the policy names but the result lacks fails rather than passing unseen. */
    for (int i = 0; !err && i < p->n_over; i++) {
        if (json_object_get(domains, p->over[i].name)) continue;
        gate_check *k = &c[n++];
        memset(k, 0, sizeof *k);
        snprintf(k->domain, sizeof k->domain, "%s", p->over[i].name);
        snprintf(k->metric, sizeof k->metric, "present");
        k->is_max = false;
        k->limit = 1;
        snprintf(k->detail, sizeof k->detail, "not measured: the policy names domain '%s', the result has no such domain", p->over[i].name);
    }
    for (int i = 0; !err && i < N_LIMITS; i++) {
        if (LIMITS[i].per_domain || isnan(p->limit[i])) continue;
        gate_check *k = &c[n++];
        memset(k, 0, sizeof *k);
        snprintf(k->metric, sizeof k->metric, "%s", LIMITS[i].metric);
        k->limit = p->limit[i];
        k->is_max = LIMITS[i].is_max;
        k->measured = get_num(result, LIMITS[i].section, LIMITS[i].field, LIMITS[i].sub, &k->value);
        if (baseline && get_num(baseline, LIMITS[i].section, LIMITS[i].field, LIMITS[i].sub, &k->baseline)) {
            k->has_baseline = true;
            k->delta = k->value - k->baseline;
        }
        if (k->measured) snprintf(k->detail, sizeof k->detail, "%s %.6g", LIMITS[i].metric, k->value);
        else
            snprintf(k->detail, sizeof k->detail, "not measured: the result has no '%s%s%s%s%s' (eval with %s)", LIMITS[i].section, LIMITS[i].field ? "." : "",
                     LIMITS[i].field ? LIMITS[i].field : "", LIMITS[i].sub ? "." : "", LIMITS[i].sub ? LIMITS[i].sub : "",
                     strcmp(LIMITS[i].section, "cost") == 0 ? "--workload and --hardware" : strcmp(LIMITS[i].section, "workload") == 0 ? "--workload" : "a suite with canaries");
        k->pass = k->measured && passes(k->value, k->limit, k->is_max);
    }
    if (err) {
        free(c);
        return err;
    }
    *checks = c;
    *n_checks = n;
    return NULL;
}
