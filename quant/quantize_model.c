/* Applying a quantization recipe to a model's linear weights (see quantize_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "quant/quantize_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/qmatmul.h"

static bool is_block_linear(const smelt_node *n) { return strcmp(n->op, "Linear") == 0 && strcmp(n->name, "lm_head") != 0 && n->n_inputs >= 2; }

static smelt_err *check_recipe(const smelt_model *m, const quant_recipe *r)
{
    const quant_scheme *s = &r->scheme;
    if (strcmp(r->method, "rtn") != 0) return SMELT_ERR(SMELT_E_INVALID, "unknown method '%s' (supported: rtn)", r->method);
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

/* Quantizes tensor index ti; adds its scale (and zero) tensors. */
static smelt_err *quantize_tensor(smelt_model *m, int ti, const quant_scheme *s, quant_report *rep)
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
    rtn_quantize(w, rows, cols, s, q, scale, zero);

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

smelt_err *quantize_llm(smelt_model *m, const quant_recipe *r, quant_progress_fn progress, void *ctx, quant_report **rep_out, int *n_rep)
{
    *rep_out = NULL;
    *n_rep = 0;
    SMELT_TRY(check_recipe(m, r));
    int total = 0;
    for (int i = 0; i < m->n_nodes; i++) total += is_block_linear(&m->nodes[i]);
    quant_report *rep = calloc(total ? (size_t)total : 1, sizeof *rep);
    if (!rep) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_err *err = NULL;
    int k = 0;
    for (int i = 0; !err && i < m->n_nodes; i++) {
        if (!is_block_linear(&m->nodes[i])) continue;
        const smelt_tensor *t = smelt_model_find(m, m->nodes[i].inputs[1]);
        if (t->quant.kind != SMELT_QUANT_NONE) continue; /* shared by two nodes: done once */
        err = quantize_tensor(m, (int)(t - m->tensors), &r->scheme, &rep[k]);
        if (!err) k++;
        if (progress) progress(ctx, k, total);
    }
    json_t *q = json_pack("{s:s, s:i, s:i, s:b}", "method", r->method, "bits", r->scheme.bits, "group", r->scheme.bits == 8 ? 0 : r->scheme.group, "asym",
                          r->scheme.asym);
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
