/* Applying a quantization recipe to a model's linear weights (see quantize_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "quant/quantize_model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "quant/awq.h"
#include "quant/clip.h"
#include "quant/gptq.h"
#include "quant/refit.h"
#include "quant/sensitivity.h"
#include "runtime/cpu/qmatmul.h"
#include "runtime/llm.h"

static bool is_block_linear(const smelt_node *n) { return strcmp(n->op, "Linear") == 0 && strcmp(n->name, "lm_head") != 0 && n->n_inputs >= 2; }

static smelt_err *check_recipe(const smelt_model *m, const quant_recipe *r)
{
    const quant_scheme *s = &r->scheme;
    bool gptq = strcmp(r->method, "gptq") == 0, awq = strcmp(r->method, "awq") == 0 || strcmp(r->method, "awq-gptq") == 0;
    if (!gptq && !awq && strcmp(r->method, "rtn") != 0)
        return SMELT_ERR(SMELT_E_INVALID, "unknown method '%s' (supported: rtn, gptq, awq, awq-gptq)", r->method);
    if ((gptq || awq) && (!r->calib || r->n_calib < 1 || r->calib_window < 2))
        return SMELT_ERR(SMELT_E_INVALID, "%s needs calibration text (--calib FILE[:TOKENS])", r->method);
    if (gptq && !(r->damp > 0 && r->damp < 1)) return SMELT_ERR(SMELT_E_INVALID, "damp %g, expected between 0 and 1", r->damp);
    if (r->float_target && strcmp(r->method, "gptq") != 0)
        return SMELT_ERR(SMELT_E_INVALID, "--float-target corrects GPTQ's target with the float model's inputs: it goes with --method gptq, not %s", r->method);
    if (r->avg_bits > 0 && (!r->calib || r->n_calib < 1))
        return SMELT_ERR(SMELT_E_INVALID, "--avg-bits measures each layer's sensitivity on calibration text: give --calib FILE[:TOKENS]");
    if (r->avg_bits > 0 && s->bits != 4) return SMELT_ERR(SMELT_E_INVALID, "--avg-bits mixes 4-bit and 8-bit weights: use it with --scheme w4");
    if (awq && m->kind == SMELT_KIND_LLM && strcmp(m->llm.norm, "rmsnorm") != 0)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "awq folds its scales into RMSNorm weights: Llama-family models only (this is %s); use gptq", m->arch);
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
static smelt_err *quantize_tensor(smelt_model *m, int ti, const quant_recipe *r, const quant_scheme *s, double *H, const double *G, quant_report *rep)
{
    /* GPTQ's rounding: gptq, and awq-gptq after its scales */
    bool gptq = strcmp(r->method, "gptq") == 0 || strcmp(r->method, "awq-gptq") == 0;
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
    /* with a float target GPTQ (and the refit) aim at the corrected weights; the reported error
     * stays against the weights as given */
    float *w_given = NULL;
    if (G) {
        smelt_err *err = (w_given = malloc(n * sizeof *w_given)) ? NULL : SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
        if (!err) memcpy(w_given, w, n * sizeof *w_given);
        if (!err) err = smelt_err_wrap(gptq_float_target(w, rows, cols, H, G, r->damp), "weight '%s'", t->name);
        if (err) {
            free(w), free(w_given);
            return err;
        }
    }
    float *w_orig = NULL;
    float *Hf = r->refit && H ? malloc((size_t)cols * cols * sizeof *Hf) : NULL;
    if (r->refit && H && !Hf) {
        free(w), free(w_given);
        return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
    }
    /* copied now: GPTQ dampens and factors H in place */
    for (size_t i = 0; Hf && i < (size_t)cols * cols; i++) Hf[i] = (float)H[i];
    if (gptq) {
        /* GPTQ overwrites w; the error is reported against the original */
        w_orig = malloc(n * sizeof *w_orig);
        if (!w_orig) {
            free(w), free(w_given), free(Hf);
            return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
        }
        memcpy(w_orig, w, n * sizeof *w_orig);
        smelt_err *err = smelt_err_wrap(gptq_quantize(w, rows, cols, H, r->damp, r->act_order, r->clip, s, q, scale, zero), "weight '%s'", t->name);
        if (err) {
            free(w), free(w_orig), free(Hf), free(w_given);
            return err;
        }
        free(w);
        w = w_orig;
    } else if (r->clip) {
        clip_quantize(w, rows, cols, s, H, q, scale, zero); /* the range search on output error (awq) or weight error (rtn) */
    } else {
        rtn_quantize(w, rows, cols, s, q, scale, zero);
    }
    if (Hf) {
        smelt_err *err = smelt_err_wrap(refit_scales(w, rows, cols, Hf, s, q, scale, zero, NULL), "weight '%s'", t->name);
        free(Hf);
        if (err) {
            free(w), free(w_given);
            return err;
        }
    }
    if (w_given) {
        free(w);
        w = w_given;
    }

    /* reconstruction error, row by row through the same dequantizer the runtime uses */
    qmat qm = {s->bits, rows, cols, group, q, scale, zero, false};
    float *row = malloc((size_t)cols * sizeof *row);
    double num = 0, den = 0;
    for (int i = 0; row && i < rows; i++) {
        qmat_dequant_rows(&qm, i, i + 1, row);
        for (int c = 0; c < cols; c++) {
            double d = (double)row[c] - w[(size_t)i * cols + c];
            num += d * d;
            den += (double)w[(size_t)i * cols + c] * w[(size_t)i * cols + c];
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
    *rep = (quant_report){name, s->bits, group, den > 0 ? sqrt(num / den) : 0, before, qmat_bytes(&qm), -1};
    return NULL;
}

static int max_int(int a, int b) { return a > b ? a : b; }

/* ---- GPTQ: Hessians of a block's projection inputs from the calibration windows ---- */

typedef struct {
    int layer;
    int dim[LLM_IN_COUNT];
    double *H[LLM_IN_COUNT]; /* sum of x x^T over the calibration tokens, [dim][dim] */
    double *xabs[LLM_IN_COUNT]; /* sum of |x| per channel (AWQ), then the mean */
    float *tmp;              /* one batch's X^T X */
    int64_t n;               /* tokens seen (every kind sees the same tokens) */
    int only;                /* the one input kind wanted, or -1 for all */
    float *keep;             /* when not NULL: the `only` input kept for every calibration token, [tokens][dim] */
    size_t keep_at;          /* the batch's first token */
    /* the float model's pass: every kind's inputs kept (keep_all[kind], [tokens][dim]), no Hessians */
    float *keep_all[LLM_IN_COUNT];
    /* GPTQ against the float model's outputs: the float inputs of the same tokens (xf[kind]) give
     * G = sum x_q x_f^T, [dim][dim] */
    const float *xf[LLM_IN_COUNT];
    double *G[LLM_IN_COUNT];
    bool oom;
} hess_acc;

static void capture_hessian(void *ctx, int layer, llm_input_kind kind, const float *x, int T, int dim)
{
    hess_acc *a = ctx;
    if (layer != a->layer || a->oom || (a->only >= 0 && (int)kind != a->only)) return;
    if (a->keep_all[kind]) {
        a->dim[kind] = dim;
        memcpy(a->keep_all[kind] + a->keep_at * dim, x, (size_t)T * dim * sizeof *x);
        if ((int)kind == LLM_IN_QKV) a->n += T;
        return;
    }
    if (!a->H[kind]) {
        a->dim[kind] = dim;
        a->H[kind] = calloc((size_t)dim * dim, sizeof(double));
        a->xabs[kind] = calloc((size_t)dim, sizeof(double));
        float *t = realloc(a->tmp, (size_t)dim * dim * sizeof(float));
        if (t) a->tmp = t;
        if (!a->H[kind] || !a->xabs[kind] || !t) {
            a->oom = true;
            return;
        }
    }
    /* X^T X of this batch in f32 (sgemm over T tokens), summed into double */
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, T, 1.0f, x, dim, 0.0f, a->tmp, dim);
    double *H = a->H[kind], *xa = a->xabs[kind];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < dim; i++) xa[i] += fabsf(x[(size_t)t * dim + i]);
    for (int i = 0; i < dim; i++)
        for (int j = i; j < dim; j++) H[(size_t)i * dim + j] += a->tmp[(size_t)i * dim + j];
    if (a->xf[kind]) {
        if (!a->G[kind] && !(a->G[kind] = calloc((size_t)dim * dim, sizeof(double)))) {
            a->oom = true;
            return;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dim, dim, T, 1.0f, x, dim, a->xf[kind] + a->keep_at * dim, dim, 0.0f, a->tmp, dim);
        for (size_t i = 0; i < (size_t)dim * dim; i++) a->G[kind][i] += a->tmp[i];
    }
    if ((int)kind == (a->only >= 0 ? a->only : LLM_IN_QKV)) a->n += T;
    if (a->keep && (int)kind == a->only) memcpy(a->keep + a->keep_at * dim, x, (size_t)T * dim * sizeof *x);
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

/* Runs the calibration windows through block `layer` alone, from their hidden states at its input
 * (in [n_calib][window][hidden]; NULL for block 0: the embeddings), with acc (when not NULL)
 * collecting the projection inputs' Hessians (and keeping one kind's inputs, acc->keep); out (when
 * not NULL) receives the windows' residual stream where the pass ends: the block's output, or where
 * acc's stop ended it (in and out may be the same buffer). A pass may start inside the block
 * (llm_engine_set_start) from what an earlier pass kept: at LLM_IN_O `in` is the block's input and
 * proj the attention output; at LLM_IN_MLP `in` is the stream after the attention half, as a pass
 * stopped at LLM_IN_MLP wrote it; at LLM_IN_DOWN `in` is that stream and proj the down inputs.
 * One block a pass instead of the whole prefix again: quantizing a model of L blocks costs O(L)
 * block passes, not O(L^2). The batches are the same either way, so the results are too. */
static smelt_err *run_block(smelt_model *m, const quant_recipe *r, int layer, hess_acc *acc, llm_input_kind start, const float *in, const float *proj,
                            float *out)
{
    llm_engine *e = NULL;
    SMELT_TRY(llm_engine_new_blocks(m, layer, layer, &e));
    smelt_err *err = llm_engine_set_start(e, start);
    if (err) {
        llm_engine_free(e);
        return err;
    }
    if (acc) {
        /* GPTQ's passes want one input kind each: the rest of the block need not run */
        llm_engine_set_capture(e, capture_hessian, acc, layer);
        if (acc->only >= 0) llm_engine_set_capture_stop(e, (llm_input_kind)acc->only);
    }
    const smelt_llm_config *c = &m->llm;
    size_t proj_dim = start == LLM_IN_O ? (size_t)c->n_heads * c->head_dim : (size_t)c->ffn;
    enum { BATCH = 4 };
    llm_seq *seqs[BATCH] = {0};
    size_t row = (size_t)r->calib_window * m->llm.hidden; /* one window's hidden states */
    for (int i = 0; !err && i < BATCH; i++) err = llm_seq_new(e, &seqs[i]);
    for (int w0 = 0; !err && w0 < r->n_calib; w0 += BATCH) {
        llm_batch_item items[BATCH];
        int nb = r->n_calib - w0 < BATCH ? r->n_calib - w0 : BATCH;
        for (int b = 0; b < nb; b++) {
            llm_seq_truncate(seqs[b], 0);
            items[b] = (llm_batch_item){seqs[b], r->calib + (size_t)(w0 + b) * r->calib_window, r->calib_window, false};
        }
        size_t at = (size_t)w0 * row, tok = (size_t)w0 * r->calib_window; /* the batch's windows are adjacent rows */
        if (acc) acc->keep_at = tok;
        err = llm_forward_blocks_from(e, items, nb, in ? in + at : NULL, proj ? proj + tok * proj_dim : NULL, out ? out + at : NULL);
        if (!err && acc && acc->oom) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory for the calibration Hessians");
    }
    for (int i = 0; i < BATCH; i++) llm_seq_free(seqs[i]);
    llm_engine_free(e);
    for (int k = 0; acc && !err && k < LLM_IN_COUNT; k++)
        if (acc->H[k]) {
            finish_hessian(acc->H[k], acc->dim[k], acc->n);
            for (int i = 0; i < acc->dim[k]; i++) acc->xabs[k][i] /= (double)acc->n;
            for (size_t i = 0; acc->G[k] && i < (size_t)acc->dim[k] * acc->dim[k]; i++) acc->G[k][i] *= 2.0 / (double)acc->n;
        }
    return err;
}

static void hess_free(hess_acc *a)
{
    for (int k = 0; k < LLM_IN_COUNT; k++) free(a->H[k]), free(a->xabs[k]), free(a->G[k]);
    free(a->tmp);
}

/* The layer a block's node belongs to ("l3.q_proj" -> 3), -1 for others. */
static int layer_of(const char *node)
{
    return node[0] == 'l' && node[1] >= '0' && node[1] <= '9' ? atoi(node + 1) : -1;
}

/* ---- AWQ: scales searched per input, folded into what computes the input ---- */

/* The tensor behind input `in` of node "l<layer>.<what>", made an f32 copy the model owns (the
 * scales are applied in f32; bf16 would round them away). Called once a tensor. NULL when the node
 * or input is absent. */
static float *layer_tensor_f32(smelt_model *m, int layer, const char *what, int in, smelt_tensor **tout)
{
    char name[64];
    snprintf(name, sizeof name, "l%d.%s", layer, what);
    for (int i = 0; i < m->n_nodes; i++) {
        const smelt_node *nd = &m->nodes[i];
        if (strcmp(nd->name, name) != 0) continue;
        if (in >= nd->n_inputs || !nd->inputs[in][0]) return NULL;
        smelt_tensor *t = smelt_model_find(m, nd->inputs[in]);
        if (!t) return NULL;
        *tout = t;
        size_t n = (size_t)smelt_shape_numel(t->ndim, t->shape);
        float *w = smelt_model_alloc(m, n * sizeof *w);
        if (!w) return NULL;
        smelt_convert_float(w, SMELT_DT_F32, t->data, t->dtype, n);
        t->data = w, t->dtype = SMELT_DT_F32, t->nbytes = n * sizeof *w; /* (mapped f32 data is read-only: copied too) */
        return w;
    }
    return NULL;
}

static void scale_cols(float *w, int rows, int cols, const float *s)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) w[(size_t)r * cols + c] *= s[c];
}

/* H of inputs divided by s: H_ij / (s_i s_j) */
static void unscale_hessian(double *H, int dim, const float *s)
{
    for (int i = 0; i < dim; i++)
        for (int j = 0; j < dim; j++) H[(size_t)i * dim + j] /= (double)s[i] * s[j];
}

/* Searches and applies the four scalings of a Llama block: q/k/v (into input_layernorm), o_proj
 * (into v_proj's rows: with GQA the query heads sharing a KV head share its scales), gate/up (into
 * post_attention_layernorm) and down_proj (into up_proj's rows). The block's Hessians become those
 * of the scaled inputs. */
static smelt_err *awq_layer(smelt_model *m, int layer, hess_acc *acc, const quant_scheme *sch, float *alphas)
{
    const smelt_llm_config *c = &m->llm;
    smelt_tensor *tq, *tk, *tv, *to, *tg, *tu, *td, *tn1, *tn2, *tvb = NULL;
    float *q = layer_tensor_f32(m, layer, "q_proj", 1, &tq), *k = layer_tensor_f32(m, layer, "k_proj", 1, &tk),
          *v = layer_tensor_f32(m, layer, "v_proj", 1, &tv), *o = layer_tensor_f32(m, layer, "o_proj", 1, &to),
          *g = layer_tensor_f32(m, layer, "gate_proj", 1, &tg), *u = layer_tensor_f32(m, layer, "up_proj", 1, &tu),
          *d = layer_tensor_f32(m, layer, "down_proj", 1, &td), *n1 = layer_tensor_f32(m, layer, "input_layernorm", 1, &tn1),
          *n2 = layer_tensor_f32(m, layer, "post_attention_layernorm", 1, &tn2);
    float *vb = layer_tensor_f32(m, layer, "v_proj", 2, &tvb);
    if (!q || !k || !v || !o || !g || !u || !d || !n1 || !n2) return SMELT_ERR(SMELT_E_NOMEM, "block %d: a projection or norm weight is missing or out of memory", layer);
    int H = c->hidden, F = c->ffn, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim, rep = c->n_heads / c->n_kv_heads;
    for (int kind = 0; kind < LLM_IN_COUNT; kind++)
        if (!acc->H[kind]) return SMELT_ERR(SMELT_E_INVALID, "block %d: no calibration inputs", layer);
    float *s = malloc((size_t)(H > F ? (H > Q ? H : Q) : (F > Q ? F : Q)) * sizeof *s), *xa = malloc((size_t)(F > Q ? (F > H ? F : H) : (Q > H ? Q : H)) * sizeof *xa);
    float *sv = malloc((size_t)KV * sizeof *sv);
    smelt_err *err = NULL;
    if (!s || !xa || !sv) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");

    /* q, k, v read the input norm's output */
    if (!err) {
        for (int i = 0; i < H; i++) xa[i] = (float)acc->xabs[LLM_IN_QKV][i];
        const float *W[3] = {q, k, v};
        int rows[3] = {Q, KV, KV};
        err = awq_search(W, rows, 3, H, acc->H[LLM_IN_QKV], xa, sch, s, &alphas[0]);
    }
    if (!err) {
        scale_cols(q, Q, H, s), scale_cols(k, KV, H, s), scale_cols(v, KV, H, s);
        for (int i = 0; i < H; i++) n1[i] /= s[i];
        unscale_hessian(acc->H[LLM_IN_QKV], H, s);
    }
    /* o_proj reads the heads' attention outputs, linear in v: channel h*hd + j comes from KV head
     * h / rep's channel j, so the heads sharing it get one scale (their mean activation) */
    if (!err) {
        for (int j = 0; j < KV; j++) sv[j] = 0;
        for (int i = 0; i < Q; i++) sv[(i / c->head_dim / rep) * c->head_dim + i % c->head_dim] += (float)acc->xabs[LLM_IN_O][i] / rep;
        for (int i = 0; i < Q; i++) xa[i] = sv[(i / c->head_dim / rep) * c->head_dim + i % c->head_dim];
        const float *W[1] = {o};
        int rows[1] = {H};
        err = awq_search(W, rows, 1, Q, acc->H[LLM_IN_O], xa, sch, s, &alphas[1]);
    }
    if (!err) {
        scale_cols(o, H, Q, s);
        for (int i = 0; i < Q; i++) sv[(i / c->head_dim / rep) * c->head_dim + i % c->head_dim] = s[i];
        for (int j = 0; j < KV; j++) {
            for (int i = 0; i < H; i++) v[(size_t)j * H + i] /= sv[j];
            if (vb) vb[j] /= sv[j];
        }
        unscale_hessian(acc->H[LLM_IN_O], Q, s);
    }
    /* gate and up read the post-attention norm's output */
    if (!err) {
        for (int i = 0; i < H; i++) xa[i] = (float)acc->xabs[LLM_IN_MLP][i];
        const float *W[2] = {g, u};
        int rows[2] = {F, F};
        err = awq_search(W, rows, 2, H, acc->H[LLM_IN_MLP], xa, sch, s, &alphas[2]);
    }
    if (!err) {
        scale_cols(g, F, H, s), scale_cols(u, F, H, s);
        for (int i = 0; i < H; i++) n2[i] /= s[i];
        unscale_hessian(acc->H[LLM_IN_MLP], H, s);
    }
    /* down reads silu(gate) * up, linear in up's rows */
    if (!err) {
        for (int i = 0; i < F; i++) xa[i] = (float)acc->xabs[LLM_IN_DOWN][i];
        const float *W[1] = {d};
        int rows[1] = {H};
        err = awq_search(W, rows, 1, F, acc->H[LLM_IN_DOWN], xa, sch, s, &alphas[3]);
    }
    if (!err) {
        scale_cols(d, H, F, s);
        for (int j = 0; j < F; j++)
            for (int i = 0; i < H; i++) u[(size_t)j * H + i] /= s[j];
        unscale_hessian(acc->H[LLM_IN_DOWN], F, s);
    }
    free(s), free(xa), free(sv);
    return err;
}

/* ---- mixed precision: sensitivities, then the budget ---- */

static smelt_err *plan_mixed(smelt_model *m, const quant_recipe *r, quant_progress_fn progress, void *ctx, quant_scheme *scheme_of, double *sens_of,
                             double *achieved)
{
    int n = 0;
    int *idx = malloc((size_t)(m->n_nodes ? m->n_nodes : 1) * sizeof *idx);
    int64_t *rows = malloc((size_t)(m->n_nodes ? m->n_nodes : 1) * sizeof *rows), *cols = malloc((size_t)(m->n_nodes ? m->n_nodes : 1) * sizeof *cols);
    double *kl = malloc((size_t)(m->n_nodes ? m->n_nodes : 1) * sizeof *kl);
    bool *high = malloc((size_t)(m->n_nodes ? m->n_nodes : 1) * sizeof *high);
    smelt_err *err = NULL;
    if (!idx || !rows || !cols || !kl || !high) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; !err && i < m->n_nodes; i++) {
        if (!is_block_linear(&m->nodes[i])) continue;
        const smelt_tensor *t = smelt_model_find(m, m->nodes[i].inputs[1]);
        int ti = (int)(t - m->tensors);
        bool seen = false;
        for (int j = 0; j < n; j++) seen |= idx[j] == ti;
        if (seen) continue;
        idx[n] = ti, rows[n] = t->shape[0], cols[n] = t->shape[1];
        n++;
    }
    int windows = r->sens_windows < r->n_calib ? r->sens_windows : r->n_calib;
    if (!err) err = quant_sensitivity(m, idx, n, &r->scheme, r->calib, windows > 0 ? windows : 1, r->calib_window, progress, ctx, kl);
    if (!err) err = quant_mixed_choose(rows, cols, kl, NULL, n, &r->scheme, r->avg_bits, high, achieved);
    for (int j = 0; !err && j < n; j++) {
        sens_of[idx[j]] = kl[j];
        if (high[j]) scheme_of[idx[j]] = (quant_scheme){8, 0, false};
    }
    free(idx), free(rows), free(cols), free(kl), free(high);
    return err;
}

smelt_err *quantize_llm(smelt_model *m, const quant_recipe *r, quant_progress_fn progress, void *ctx, quant_report **rep_out, int *n_rep)
{
    *rep_out = NULL;
    *n_rep = 0;
    SMELT_TRY(check_recipe(m, r));
    bool gptq = strcmp(r->method, "gptq") == 0, awq = strcmp(r->method, "awq") == 0 || strcmp(r->method, "awq-gptq") == 0, calibrated = gptq || awq;
    bool gpt2 = strcmp(m->llm.pos, "learned") == 0;
    int total = 0;
    for (int i = 0; i < m->n_nodes; i++) total += is_block_linear(&m->nodes[i]);
    quant_report *rep = calloc(total ? (size_t)total : 1, sizeof *rep);
    json_t *alphas = json_array();
    if (!rep || !alphas) {
        free(rep), json_decref(alphas);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    smelt_err *err = NULL;
    int k = 0;
    /* the scheme of each tensor (by index): the recipe's, or int8 where mixed precision says so */
    quant_scheme *scheme_of = malloc((size_t)(m->n_tensors ? m->n_tensors : 1) * sizeof *scheme_of);
    double *sens_of = malloc((size_t)(m->n_tensors ? m->n_tensors : 1) * sizeof *sens_of);
    double achieved_bits = 0;
    if (!scheme_of || !sens_of) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; !err && i < m->n_tensors; i++) scheme_of[i] = r->scheme, sens_of[i] = -1;
    if (!err && r->avg_bits > 0) err = plan_mixed(m, r, progress, ctx, scheme_of, sens_of, &achieved_bits);
    /* calibrated methods go block by block, each on the outputs of the blocks already quantized;
     * RTN takes every weight in one pass (layer -1). GPTQ goes further, input by input within a
     * block ("true sequential"): o_proj's Hessian comes from attention computed with q/k/v
     * already quantized, and so on. AWQ searches its four scalings on one pass of the block. */
    int n_pass = gptq ? LLM_IN_COUNT : 1;
    float *hid = NULL; /* the calibration tokens' hidden states at the input of the current block */
    /* GPTQ: the stream after the block's attention half, kept from the gate/up pass (attention
     * final by then), so the down pass and the block's output run only the MLP half */
    float *mid = NULL;
    /* GPTQ: o_proj's inputs kept from its own pass (q/k/v final by then) for the gate/up pass, and
     * down_proj's inputs kept from its pass (gate/up final) for the block's output, so neither
     * computes them again: 40% of the passes' projection flops. Optional: without the memory
     * (tokens x max(heads x head_dim, ffn) floats) the passes recompute them, to the same floats. */
    float *kept = NULL;
    size_t hid_n = (size_t)r->n_calib * r->calib_window * m->llm.hidden;
    size_t kept_n = (size_t)r->n_calib * r->calib_window * (size_t)max_int(m->llm.n_heads * m->llm.head_dim, m->llm.ffn);
    if (!err && calibrated && !(hid = malloc((hid_n ? hid_n : 1) * sizeof *hid)))
        err = SMELT_ERR(SMELT_E_NOMEM, "out of memory for the hidden states of %d calibration windows", r->n_calib);
    if (!err && gptq && !(mid = malloc((hid_n ? hid_n : 1) * sizeof *mid)))
        err = SMELT_ERR(SMELT_E_NOMEM, "out of memory for the hidden states of %d calibration windows", r->n_calib);
    if (!err && gptq && !getenv("SMELT_GPTQ_NO_KEEP")) kept = malloc((kept_n ? kept_n : 1) * sizeof *kept);
    /* GPTQ against the float model: its hidden states and its block's four inputs */
    bool float_target = gptq && r->float_target;
    float *hid_f = NULL, *xf[LLM_IN_COUNT] = {0};
    if (!err && float_target) {
        size_t tok = (size_t)r->n_calib * r->calib_window;
        int dims[LLM_IN_COUNT] = {m->llm.hidden, m->llm.n_heads * m->llm.head_dim, m->llm.hidden, m->llm.ffn};
        hid_f = malloc((hid_n ? hid_n : 1) * sizeof *hid_f);
        bool ok = hid_f != NULL;
        for (int kind = 0; kind < LLM_IN_COUNT; kind++) ok = ok && (xf[kind] = malloc(tok * dims[kind] * sizeof(float)));
        if (!ok) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory for the float model's inputs of %d calibration windows", r->n_calib);
    }
    for (int step = calibrated ? 0 : -1; !err && step < (calibrated ? m->llm.n_layers * n_pass : 0); step++) {
        int layer = calibrated ? step / n_pass : -1, pass = gptq ? step % n_pass : -1;
        hess_acc acc = {.layer = layer, .only = pass};
        /* block 0 starts from the embeddings, which GPTQ's first pass (stopped at q/k/v's input,
         * the block's input) leaves in hid for the passes that start inside the block */
        const float *in = layer == 0 && pass <= LLM_IN_QKV ? NULL : hid;
        if (pass == LLM_IN_O || pass == LLM_IN_DOWN) acc.keep = kept;
        if (float_target && pass == LLM_IN_QKV) {
            /* the float block, from the float model's stream, before any of its weights is rounded */
            hess_acc fa = {.layer = layer, .only = -1};
            for (int kind = 0; kind < LLM_IN_COUNT; kind++) fa.keep_all[kind] = xf[kind];
            err = run_block(m, r, layer, &fa, LLM_IN_QKV, layer == 0 ? NULL : hid_f, NULL, hid_f); /* checked before the next pass */
            hess_free(&fa);
        }
        if (float_target) acc.xf[pass] = xf[pass];
        if (!err && calibrated) {
            if (pass == LLM_IN_QKV) err = run_block(m, r, layer, &acc, LLM_IN_QKV, in, NULL, layer == 0 ? hid : NULL);
            else if (pass == LLM_IN_MLP)
                err = kept ? run_block(m, r, layer, &acc, LLM_IN_O, in, kept, mid) : run_block(m, r, layer, &acc, LLM_IN_QKV, in, NULL, mid);
            else if (pass == LLM_IN_DOWN) err = run_block(m, r, layer, &acc, LLM_IN_MLP, mid, NULL, NULL);
            else err = run_block(m, r, layer, &acc, LLM_IN_QKV, in, NULL, NULL);
        }
        if (!err && awq) {
            float a[4];
            err = awq_layer(m, layer, &acc, &r->scheme, a);
            if (!err) json_array_append_new(alphas, json_pack("[f, f, f, f]", a[0], a[1], a[2], a[3]));
        }
        for (int i = 0; !err && i < m->n_nodes; i++) {
            const smelt_node *nd = &m->nodes[i];
            if (!is_block_linear(nd) || (calibrated && layer_of(nd->name) != layer)) continue;
            if (pass >= 0 && (int)input_kind(nd->name, gpt2) != pass) continue;
            const smelt_tensor *t = smelt_model_find(m, nd->inputs[1]);
            if (t->quant.kind != SMELT_QUANT_NONE) continue; /* shared by two nodes: done once */
            double *H = NULL;
            if (calibrated) {
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
            int ti = (int)(t - m->tensors);
            err = quantize_tensor(m, ti, r, &scheme_of[ti], H, calibrated ? acc.G[input_kind(nd->name, gpt2)] : NULL, &rep[k]);
            free(H);
            if (!err) rep[k++].sensitivity = sens_of[ti];
            if (progress) progress(ctx, k, total);
        }
        hess_free(&acc);
        /* the block is done: its outputs, from its quantized weights, feed the next one */
        if (!err && calibrated && (step + 1) % n_pass == 0 && layer + 1 < m->llm.n_layers)
            err = gptq && kept ? run_block(m, r, layer, NULL, LLM_IN_DOWN, mid, kept, hid)
                  : gptq   ? run_block(m, r, layer, NULL, LLM_IN_MLP, mid, NULL, hid)
                           : run_block(m, r, layer, NULL, LLM_IN_QKV, layer == 0 ? NULL : hid, NULL, hid);
    }
    free(hid), free(mid), free(kept), free(hid_f);
    for (int kind = 0; kind < LLM_IN_COUNT; kind++) free(xf[kind]);
    json_t *q = json_pack("{s:s, s:i, s:i, s:b, s:b}", "method", r->method, "bits", r->scheme.bits, "group", r->scheme.bits == 8 ? 0 : r->scheme.group,
                          "asym", r->scheme.asym, "clip", r->clip);
    if (q && r->refit) json_object_set_new(q, "refit", json_true());
    if (q && r->float_target) json_object_set_new(q, "float_target", json_true());
    if (q && calibrated)
        json_object_update_new(q, json_pack("{s:i, s:i}", "calib_windows", r->n_calib, "calib_window", r->calib_window));
    if (q && (gptq || strcmp(r->method, "awq-gptq") == 0)) json_object_update_new(q, json_pack("{s:f, s:b}", "damp", r->damp, "act_order", r->act_order));
    if (q && awq) json_object_set(q, "awq_alpha", alphas); /* per block: q/k/v, o, gate/up, down */
    if (q && r->avg_bits > 0)
        json_object_update_new(q, json_pack("{s:f, s:f, s:i}", "avg_bits_budget", r->avg_bits, "avg_bits", achieved_bits, "sensitivity_windows",
                                            r->sens_windows < r->n_calib ? r->sens_windows : r->n_calib));
    free(scheme_of), free(sens_of);
    json_decref(alphas);
    if (!err && (!q || json_object_set_new(m->meta, "quantization", q) != 0)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    else if (err) json_decref(q);
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
