/* Classifier domains: batches of labelled examples through the candidate and reference graphs
 * (see classify.h). */
#define _POSIX_C_SOURCE 200809L
#include "evals/classify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "core/log.h"
#include "evals/labelled.h"
#include "formats/load.h"

smelt_err *classify_open(const char *path, classify_model *out)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    SMELT_TRY(smelt_load_model(path, false, &out->model));
    smelt_err *err = NULL;
    if (out->model->kind != SMELT_KIND_GRAPH || out->model->n_nodes == 0)
        err = SMELT_ERR(SMELT_E_INVALID, "%s: expected an ONNX graph (or a .smelt artifact of one) for a classifier suite, found a %s", path,
                        out->model->kind == SMELT_KIND_LLM ? "language model" : "file of bare tensors");
    if (!err) err = smelt_err_wrap(smelt_graph_load(out->model, &out->graph), "%s", path);
    if (err) classify_close(out);
    return err;
}

void classify_close(classify_model *m)
{
    if (!m) return;
    smelt_graph_free(m->graph);
    smelt_model_free(m->model);
    memset(m, 0, sizeof *m);
}

/* The graph input the examples feed and the shape of one example in it (dims after the batch). */
static smelt_err *pick_input(const smelt_model *m, const char *mpath, const eval_domain *d, const labelled_set *set, const smelt_value **in, int *ndim,
                             int64_t *dims)
{
    *in = NULL;
    for (int i = 0; i < m->n_inputs; i++)
        if (d->cls.input ? strcmp(m->inputs[i].name, d->cls.input) == 0 : m->n_inputs == 1) *in = &m->inputs[i];
    if (!*in) {
        if (d->cls.input) return SMELT_ERR(SMELT_E_INVALID, "%s: 'input' names '%s', the model has no such input", mpath, d->cls.input);
        return SMELT_ERR(SMELT_E_INVALID, "%s: the model has %d inputs, expected one (or name it with the domain's 'input')", mpath, m->n_inputs);
    }
    const smelt_value *v = *in;
    if (v->dtype != SMELT_DT_F32 || v->ndim < 2)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: input '%s': expected a float32 tensor [batch, ...], found %d dims of another type", mpath, v->name, v->ndim);
    bool fixed = true;
    int64_t per = 1;
    for (int i = 1; i < v->ndim; i++) {
        fixed &= v->dims[i] > 0;
        per *= v->dims[i] > 0 ? v->dims[i] : 1;
    }
    *ndim = v->ndim - 1;
    if (fixed) {
        if (per != set->features)
            return SMELT_ERR(SMELT_E_INVALID, "%s: input '%s' takes %lld values an example, the examples of %s have %lld", mpath, v->name, (long long)per, d->file,
                             (long long)set->features);
        memcpy(dims, v->dims + 1, (size_t)*ndim * sizeof *dims);
    } else if (v->ndim == 2) {
        dims[0] = set->features;
    } else if (set->feat_ndim == *ndim) {
        memcpy(dims, set->feat_dims, (size_t)*ndim * sizeof *dims);
    } else {
        return SMELT_ERR(SMELT_E_INVALID, "%s: input '%s' has %d symbolic dims after the batch, the examples of %s have %d dims: expected fixed dims", mpath, v->name,
                         v->ndim - 1, d->file, set->feat_ndim);
    }
    return NULL;
}

/* Runs one batch; *out is the first output, checked to be [nb, classes]. */
static smelt_err *run_batch(classify_model *m, const char *mpath, const smelt_value *in, int ndim, const int64_t *dims, float *x, int64_t nb, smelt_tensor **outs,
                            int *n_outs, int64_t *classes)
{
    smelt_tensor t = {.name = in->name, .dtype = SMELT_DT_F32, .ndim = ndim + 1, .data = x};
    t.shape[0] = nb;
    memcpy(t.shape + 1, dims, (size_t)ndim * sizeof *dims);
    t.nbytes = (size_t)smelt_shape_numel(t.ndim, t.shape) * sizeof(float);
    SMELT_TRY(smelt_err_wrap(smelt_graph_run(m->graph, &t, 1, outs, n_outs), "%s", mpath));
    const smelt_tensor *o = &(*outs)[0];
    if (o->dtype != SMELT_DT_F32 || o->ndim != 2 || o->shape[0] != nb || o->shape[1] < 1) {
        char buf[96];
        smelt_err *err = SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: output '%s' is %s, expected float32 scores [batch=%lld, classes]", mpath, o->name,
                                   smelt_shape_str(o->ndim, o->shape, buf, sizeof buf), (long long)nb);
        smelt_graph_outputs_free(*outs, *n_outs);
        *outs = NULL;
        return err;
    }
    *classes = o->shape[1];
    return NULL;
}

static int argmax(const float *y, int64_t c)
{
    int best = 0;
    for (int k = 1; k < c; k++)
        if (y[k] > y[best]) best = k;
    return best;
}

/* log-softmax of c scores into lp (double, so KL of near-equal outputs is not noise). */
static void log_softmax(const float *y, int64_t c, double *lp)
{
    double mx = y[0], s = 0;
    for (int64_t k = 1; k < c; k++) mx = fmax(mx, y[k]);
    for (int64_t k = 0; k < c; k++) s += exp((double)y[k] - mx);
    double lse = mx + log(s);
    for (int64_t k = 0; k < c; k++) lp[k] = (double)y[k] - lse;
}

typedef struct {
    int64_t n, correct, ref_correct, agree, classes;
    double kl_sum;
} tally;

static smelt_err *score(const eval_suite *s, const eval_domain *d, const labelled_set *set, classify_model *cand, classify_model *ref, tally *t)
{
    const smelt_value *cin, *rin = NULL;
    int cnd = 0, rnd = 0;
    int64_t cdims[SMELT_MAX_DIMS], rdims[SMELT_MAX_DIMS];
    SMELT_TRY(pick_input(cand->model, cand->path, d, set, &cin, &cnd, cdims));
    if (ref && ref != cand) SMELT_TRY(pick_input(ref->model, ref->path, d, set, &rin, &rnd, rdims));
    int64_t n = d->cls.max_examples > 0 && d->cls.max_examples < set->n ? d->cls.max_examples : set->n;
    int64_t bs = d->cls.batch < n ? d->cls.batch : n;
    float *x = malloc((size_t)(bs * set->features) * sizeof *x);
    double *lp = NULL, *lq = NULL;
    if (!x) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    char label[96];
    snprintf(label, sizeof label, "eval %s", d->name);
    smelt_progress p;
    smelt_progress_begin(&p, label, n);
    smelt_err *err = NULL;
    memset(t, 0, sizeof *t);
    t->n = n;
    const eval_classify *c = &d->cls;
    for (int64_t b0 = 0; !err && b0 < n; b0 += bs) {
        int64_t nb = n - b0 < bs ? n - b0 : bs;
        const float *src = set->x + b0 * set->features;
        for (int64_t i = 0; i < nb * set->features; i++) x[i] = (float)(((double)src[i] * c->scale - c->mean) / c->std);
        smelt_tensor *co = NULL, *ro = NULL;
        int nco = 0, nro = 0;
        int64_t C = 0, RC = 0;
        err = run_batch(cand, cand->path, cin, cnd, cdims, x, nb, &co, &nco, &C);
        if (!err && rin) {
            err = run_batch(ref, ref->path, rin, rnd, rdims, x, nb, &ro, &nro, &RC);
            if (!err && RC != C) err = SMELT_ERR(SMELT_E_INVALID, "%s: %lld classes, the candidate has %lld: expected the same", ref->path, (long long)RC, (long long)C);
        }
        if (!err && b0 == 0) {
            t->classes = C;
            if (set->max_label >= C)
                err = SMELT_ERR(SMELT_E_INVALID, "%s: a label is %d, the model scores %lld classes (0 to %lld)", d->file, set->max_label, (long long)C,
                                (long long)C - 1);
            if (!err && !(lp = malloc(2 * (size_t)C * sizeof *lp))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            if (!err) lq = lp + C;
        }
        const float *cy = co ? co[0].data : NULL, *ry = ro ? ro[0].data : cy;
        for (int64_t i = 0; !err && i < nb; i++) {
            int pc = argmax(cy + i * C, C), pr = argmax(ry + i * C, C), lab = set->y[b0 + i];
            t->correct += pc == lab;
            t->ref_correct += pr == lab;
            t->agree += pc == pr;
            if (d->kl && ref) {
                log_softmax(ry + i * C, C, lp);
                log_softmax(cy + i * C, C, lq);
                double kl = 0;
                for (int64_t k = 0; k < C; k++) kl += exp(lp[k]) * (lp[k] - lq[k]);
                t->kl_sum += kl;
            }
        }
        smelt_graph_outputs_free(co, nco);
        smelt_graph_outputs_free(ro, nro);
        smelt_progress_update(&p, b0 + nb);
    }
    smelt_progress_end(&p);
    free(x);
    free(lp);
    return err;
}

static smelt_err *run_domain(const eval_suite *s, const eval_domain *d, classify_model *cand, classify_model *ref, json_t **out)
{
    double t0 = smelt_now();
    labelled_set set;
    SMELT_TRY(smelt_err_wrap(d->cls.csv ? labelled_load_csv(d->file, &set) : labelled_load_idx(d->file, d->cls.labels, &set), "%s: domain '%s'", s->path, d->name));
    bool with_ref = ref && (d->kl || d->cls.agreement);
    tally t;
    smelt_err *err = smelt_err_wrap(score(s, d, &set, cand, with_ref ? ref : NULL, &t), "%s: domain '%s'", s->path, d->name);
    if (!err) {
        double acc = (double)t.correct / (double)t.n;
        json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:f, s:{s:f, s:f, s:f}, s:i}", "task", "classify", "file", d->file, "labels",
                              d->cls.labels ? json_string(d->cls.labels) : json_null(), "examples", (json_int_t)t.n, "examples_total", (json_int_t)set.n,
                              "classes", (json_int_t)t.classes, "correct", (json_int_t)t.correct, "accuracy", acc, "preprocess", "scale", d->cls.scale,
                              "mean", d->cls.mean, "std", d->cls.std, "batch", d->cls.batch);
        if (!o) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        else {
            if (with_ref) {
                double racc = (double)t.ref_correct / (double)t.n;
                json_object_set_new(o, "reference_correct", json_integer(t.ref_correct));
                json_object_set_new(o, "reference_accuracy", json_real(racc));
                json_object_set_new(o, "accuracy_drop_pts", json_real((racc - acc) * 100));
                if (d->cls.agreement) json_object_set_new(o, "agreement", json_real((double)t.agree / (double)t.n));
                if (d->kl) json_object_set_new(o, "kl", json_real(t.kl_sum / (double)t.n));
            }
            json_object_set_new(o, "seconds", json_real(smelt_now() - t0));
            *out = o;
        }
    }
    labelled_free(&set);
    return err;
}

smelt_err *classify_run(const eval_suite *s, classify_model *cand, classify_model *ref, json_t **domains)
{
    *domains = json_object();
    if (!*domains) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; i < s->n_domains; i++) {
        json_t *d = NULL;
        smelt_err *err = run_domain(s, &s->domains[i], cand, ref, &d);
        if (err) {
            json_decref(*domains);
            *domains = NULL;
            return err;
        }
        json_object_set_new(*domains, s->domains[i].name, d);
    }
    return NULL;
}
