/* Applying a quantization recipe to a model's linear weights (see quantize_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "quant/quantize_model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "quant/gptq.h"
#include "runtime/cpu/qmatmul.h"
#include "runtime/llm.h"

static bool is_block_linear(const smelt_node *n) { return strcmp(n->op, "Linear") == 0 && strcmp(n->name, "lm_head") != 0 && n->n_inputs >= 2; }

static smelt_err *check_recipe(const smelt_model *m, const quant_recipe *r)
{
    const quant_scheme *s = &r->scheme;
    bool gptq = strcmp(r->method, "gptq") == 0;
    if (!gptq && strcmp(r->method, "rtn") != 0) return SMELT_ERR(SMELT_E_INVALID, "unknown method '%s' (supported: rtn, gptq)", r->method);
    if (gptq && (!r->calib || r->n_calib < 1 || r->calib_window < 2))
        return SMELT_ERR(SMELT_E_INVALID, "gptq needs calibration text (--calib FILE[:TOKENS])");
    if (gptq && !(r->damp > 0 && r->damp < 1)) return SMELT_ERR(SMELT_E_INVALID, "damp %g, expected between 0 and 1", r->damp);
    if (s->bits != 8 && s->bits != 4) return SMELT_ERR(SMELT_E_INVALID, "%d-bit weights are not supported (8 or 4)", s->bits);
    if (s->bits == 4 && !(s->group == 32 || s->group == 64 || s->group == 128))
        return SMELT_ERR(SMELT_E_INVALID, "group size %d: expected 32, 64 or 128", s->group);
    if (s->bits == 8 && s->asym) return SMELT_ERR(SMELT_E_INVALID, "w8 is symmetric per channel; --asym is for w4");
    if (m->kind != SMELT_KIND_LLM) return SMELT_ERR(SMELT_E_UNSUPPORTED, "quantizing %s graphs is not supported yet (language models only)", m->arch);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].quant.kind != SMELT_QUANT_NONE)
            return SMELT_ERR(SMELT_E_INVALID, "the model is already quantized (tensor '%s' is %d-bit); quantize the float model", m->tensors[i].name,
                             m->tensors[i].quant.bits);
    for (int i = 0; i < m->n_nodes; i++) {
        if (!is_block_linear(&m->nodes[i])) continue;
        const smelt_tensor *t = smelt_model_find(m, m->nodes[i].inputs[1]);
        if (!t || t->ndim != 2 || !smelt_dtype_traits(t->dtype)->is_float)
            return SMELT_ERR(SMELT_E_CORRUPT, "node '%s': weight '%s' is not a float matrix", m->nodes[i].name, m->nodes[i].inputs[1]);
        if (s->bits == 4 && t->shape[1] % s->group != 0)
            return SMELT_ERR(SMELT_E_INVALID, "weight '%s': group size %d does not divide its %lld input features", t->name, s->group, (long long)t->shape[1]);
    }
    return NULL;
}

/* Quantizes tensor index ti, by RTN or, given its Hessian H ([cols][cols], consumed), by GPTQ;
 * adds its scale (and zero) tensors. */
static smelt_err *quantize_tensor(smelt_model *m, int ti, const quant_scheme *s, double *H, double damp, quant_report *rep)
{
    smelt_tensor *t = &m->tensors[ti];
    int rows = (int)t->shape[0], cols = (int)t->shape[1], group = s->bits == 8 ? cols : s->group, ng = cols / group;
    size_t n = (size_t)rows * cols;
    float *w = malloc(n * sizeof *w);
    if (!w) return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
    smelt_convert_float(w, SMELT_DT_F32, t->data, t->dtype, n);
    size_t qbytes = s->bits == 8 ? n : n / 2;
    void *q = smelt_model_alloc(m, qbytes);
    float *scale = smelt_model_alloc(m, (size_t)rows * ng * sizeof *scale);
    uint8_t *zero = s->asym ? smelt_model_alloc(m, (size_t)rows * ng) : NULL;
    if (!q || !scale || (s->asym && !zero)) {
        free(w);
        return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
    }
    float *w_orig = NULL;
    if (H) {
        /* GPTQ overwrites w; the error is reported against the original */
        w_orig = malloc(n * sizeof *w_orig);
        if (!w_orig) {
            free(w);
            return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
        }
        memcpy(w_orig, w, n * sizeof *w_orig);
        smelt_err *err = smelt_err_wrap(gptq_quantize(w, rows, cols, H, damp, s, q, scale, zero), "weight '%s'", t->name);
        if (err) {
            free(w), free(w_orig);
            return err;
        }
        free(w);
        w = w_orig;
    } else {
        rtn_quantize(w, rows, cols, s, q, scale, zero);
    }

    /* reconstruction error, row by row through the same dequantizer the runtime uses */
    qmat qm = {s->bits, rows, cols, group, q, scale, zero};
    float *row = malloc((size_t)cols * sizeof *row);
    double num = 0, den = 0;
    for (int r = 0; row && r < rows; r++) {
        qmat_dequant_rows(&qm, r, r + 1, row);
        for (int c = 0; c < cols; c++) {
            double d = (double)row[c] - w[(size_t)r * cols + c];
            num += d * d;
            den += (double)w[(size_t)r * cols + c] * w[(size_t)r * cols + c];
        }
    }
    free(row);
    free(w);
    char *name = strdup(t->name);
    size_t before = t->nbytes;
    smelt_dtype orig = t->dtype;
    char sname[512], zname[512];
    snprintf(sname, sizeof sname, "%s.scale", name ? name : "");
    snprintf(zname, sizeof zname, "%s.zero", name ? name : "");
    int64_t sshape[2] = {rows, ng};
    smelt_err *err = name ? smelt_model_add_tensor(m, sname, SMELT_DT_F32, 2, sshape, scale, NULL) : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!err && zero) err = smelt_model_add_tensor(m, zname, SMELT_DT_U8, 2, sshape, zero, NULL);
    if (err) {
        free(name);
        return err;
    }
    t = &m->tensors[ti]; /* the table may have moved */
    t->dtype = s->bits == 8 ? SMELT_DT_I8 : s->asym ? SMELT_DT_U4 : SMELT_DT_I4;
    t->data = q;
    t->nbytes = qbytes;
    t->quant = (smelt_quant){s->bits == 8 ? SMELT_QUANT_PER_CHANNEL : SMELT_QUANT_GROUP, s->bits, 0, s->bits == 8 ? 0 : group, !s->asym,
                             strdup(sname), zero ? strdup(zname) : NULL, orig};
    if (!t->quant.scale || (zero && !t->quant.zero)) {
        free(name);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    *rep = (quant_report){name, s->bits, group, den > 0 ? sqrt(num / den) : 0, before, qmat_bytes(&qm)};
    return NULL;
}

/* ---- GPTQ: Hessians of a block's projection inputs from the calibration windows ---- */

typedef struct {
    int layer;
    int dim[LLM_IN_COUNT];
    double *H[LLM_IN_COUNT]; /* sum of x x^T over the calibration tokens, [dim][dim] */
    float *tmp;              /* one batch's X^T X */
    int64_t n;               /* tokens seen (for the QKV input; every kind sees the same tokens) */
    bool oom;
} hess_acc;

static void capture_hessian(void *ctx, int layer, llm_input_kind kind, const float *x, int T, int dim)
{
    hess_acc *a = ctx;
    if (layer != a->layer || a->oom) return;
    if (!a->H[kind]) {
        a->dim[kind] = dim;
        a->H[kind] = calloc((size_t)dim * dim, sizeof(double));
        float *t = realloc(a->tmp, (size_t)dim * dim * sizeof(float));
        if (t) a->tmp = t;
        if (!a->H[kind] || !t) {
            a->oom = true;
            return;
        }
    }
    /* X^T X of this batch in f32 (sgemm over T tokens), summed into double */
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, T, 1.0f, x, dim, 0.0f, a->tmp, dim);
    double *H = a->H[kind];
    for (int i = 0; i < dim; i++)
        for (int j = i; j < dim; j++) H[(size_t)i * dim + j] += a->tmp[(size_t)i * dim + j];
    if (kind == LLM_IN_QKV) a->n += T;
}

/* H = 2 X^T X / n, mirrored into the lower triangle */
static void finish_hessian(double *H, int dim, int64_t n)
{
    for (int i = 0; i < dim; i++)
        for (int j = i; j < dim; j++) H[(size_t)j * dim + i] = H[(size_t)i * dim + j] = 2.0 * H[(size_t)i * dim + j] / (double)n;
}

static llm_input_kind input_kind(const char *node, bool gpt2)
{
    const char *dot = strchr(node, '.');
    const char *p = dot ? dot + 1 : node;
    if (gpt2) return strcmp(p, "c_attn") == 0 ? LLM_IN_QKV : strcmp(p, "c_proj") == 0 ? LLM_IN_O : strcmp(p, "c_fc") == 0 ? LLM_IN_MLP : LLM_IN_DOWN;
    if (strcmp(p, "o_proj") == 0) return LLM_IN_O;
    if (strcmp(p, "gate_proj") == 0 || strcmp(p, "up_proj") == 0) return LLM_IN_MLP;
    if (strcmp(p, "down_proj") == 0) return LLM_IN_DOWN;
    return LLM_IN_QKV;
}

/* Runs the calibration windows through blocks 0..layer (earlier blocks already quantized). */
static smelt_err *collect_hessians(smelt_model *m, const quant_recipe *r, int layer, hess_acc *acc)
{
    llm_engine *e = NULL;
    SMELT_TRY(llm_engine_new(m, &e));
    llm_engine_set_capture(e, capture_hessian, acc, layer);
    enum { BATCH = 4 };
    llm_seq *seqs[BATCH] = {0};
    smelt_err *err = NULL;
    for (int i = 0; !err && i < BATCH; i++) err = llm_seq_new(e, &seqs[i]);
    for (int w0 = 0; !err && w0 < r->n_calib; w0 += BATCH) {
        llm_batch_item items[BATCH];
        int nb = r->n_calib - w0 < BATCH ? r->n_calib - w0 : BATCH;
        for (int b = 0; b < nb; b++) {
            llm_seq_truncate(seqs[b], 0);
            items[b] = (llm_batch_item){seqs[b], r->calib + (size_t)(w0 + b) * r->calib_window, r->calib_window, false};
        }
        err = llm_forward(e, items, nb, NULL);
        if (!err && acc->oom) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory for the calibration Hessians");
    }
    for (int i = 0; i < BATCH; i++) llm_seq_free(seqs[i]);
    llm_engine_free(e);
    for (int k = 0; !err && k < LLM_IN_COUNT; k++)
        if (acc->H[k]) finish_hessian(acc->H[k], acc->dim[k], acc->n);
    return err;
}

static void hess_free(hess_acc *a)
{
    for (int k = 0; k < LLM_IN_COUNT; k++) free(a->H[k]);
    free(a->tmp);
}

/* The layer a block's node belongs to ("l3.q_proj" -> 3), -1 for others. */
static int layer_of(const char *node)
{
    return node[0] == 'l' && node[1] >= '0' && node[1] <= '9' ? atoi(node + 1) : -1;
}

smelt_err *quantize_llm(smelt_model *m, const quant_recipe *r, quant_progress_fn progress, void *ctx, quant_report **rep_out, int *n_rep)
{
    *rep_out = NULL;
    *n_rep = 0;
    SMELT_TRY(check_recipe(m, r));
    bool gptq = strcmp(r->method, "gptq") == 0, gpt2 = strcmp(m->llm.pos, "learned") == 0;
    int total = 0;
    for (int i = 0; i < m->n_nodes; i++) total += is_block_linear(&m->nodes[i]);
    quant_report *rep = calloc(total ? (size_t)total : 1, sizeof *rep);
    if (!rep) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_err *err = NULL;
    int k = 0;
    for (int layer = gptq ? 0 : -1; !err && layer < (gptq ? m->llm.n_layers : 0); layer++) {
        hess_acc acc = {.layer = layer};
        if (gptq) err = collect_hessians(m, r, layer, &acc);
        for (int i = 0; !err && i < m->n_nodes; i++) {
            const smelt_node *nd = &m->nodes[i];
            if (!is_block_linear(nd) || (gptq && layer_of(nd->name) != layer)) continue;
            const smelt_tensor *t = smelt_model_find(m, nd->inputs[1]);
            if (t->quant.kind != SMELT_QUANT_NONE) continue; /* shared by two nodes: done once */
            double *H = NULL;
            if (gptq) {
                llm_input_kind kind = input_kind(nd->name, gpt2);
                int dim = acc.dim[kind];
                if (!acc.H[kind] || dim != t->shape[1]) {
                    err = SMELT_ERR(SMELT_E_INVALID, "node '%s': no calibration inputs of %lld features", nd->name, (long long)t->shape[1]);
                    break;
                }
                H = malloc((size_t)dim * dim * sizeof *H); /* gptq_quantize consumes its copy */
                if (!H) {
                    err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
                    break;
                }
                memcpy(H, acc.H[kind], (size_t)dim * dim * sizeof *H);
            }
            err = quantize_tensor(m, (int)(t - m->tensors), &r->scheme, H, r->damp, &rep[k]);
            free(H);
            if (!err) k++;
            if (progress) progress(ctx, k, total);
        }
        hess_free(&acc);
    }
    json_t *q = json_pack("{s:s, s:i, s:i, s:b}", "method", r->method, "bits", r->scheme.bits, "group", r->scheme.bits == 8 ? 0 : r->scheme.group, "asym",
                          r->scheme.asym);
    if (q && gptq)
        json_object_update_new(q, json_pack("{s:i, s:i, s:f}", "calib_windows", r->n_calib, "calib_window", r->calib_window, "damp", r->damp));
    if (!err && (!q || json_object_set_new(m->meta, "quantization", q) != 0)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (err) {
        quant_report_free(rep, k);
        return err;
    }
    *rep_out = rep;
    *n_rep = k;
    return NULL;
}

void quant_report_free(quant_report *rep, int n)
{
    for (int i = 0; rep && i < n; i++) free(rep[i].tensor);
    free(rep);
}
