/* SmoothQuant scale migration (see smoothquant.h). */
#define _POSIX_C_SOURCE 200809L
#include "quant/smoothquant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/llm.h"

/* per layer and projection input: max |x| of each channel over the calibration tokens */
typedef struct {
    int n_layers;
    int dim[LLM_IN_COUNT];
    float *amax[LLM_IN_COUNT]; /* [n_layers][dim] */
    bool bad;
} act_stats;

static void capture_amax(void *ctx, int layer, llm_input_kind kind, const float *x, int T, int dim)
{
    act_stats *a = ctx;
    if (a->bad || layer < 0 || layer >= a->n_layers) return;
    if (!a->amax[kind]) {
        a->dim[kind] = dim;
        a->amax[kind] = calloc((size_t)a->n_layers * dim, sizeof(float));
        if (!a->amax[kind]) {
            a->bad = true;
            return;
        }
    }
    if (dim != a->dim[kind]) {
        a->bad = true;
        return;
    }
    float *m = a->amax[kind] + (size_t)layer * dim;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < dim; j++) m[j] = fmaxf(m[j], fabsf(x[(size_t)t * dim + j]));
}

static smelt_err *collect(smelt_model *m, const int32_t *calib, int n_calib, int window, act_stats *st)
{
    llm_engine *e = NULL;
    SMELT_TRY(llm_engine_new(m, &e));
    llm_engine_set_capture(e, capture_amax, st, -1);
    enum { BATCH = 4 };
    llm_seq *seqs[BATCH] = {0};
    smelt_err *err = NULL;
    for (int i = 0; !err && i < BATCH; i++) err = llm_seq_new(e, &seqs[i]);
    for (int w0 = 0; !err && w0 < n_calib; w0 += BATCH) {
        llm_batch_item items[BATCH];
        int nb = n_calib - w0 < BATCH ? n_calib - w0 : BATCH;
        for (int b = 0; b < nb; b++) {
            llm_seq_truncate(seqs[b], 0);
            items[b] = (llm_batch_item){seqs[b], calib + (size_t)(w0 + b) * window, window, false};
        }
        err = llm_forward(e, items, nb, NULL);
        if (!err && st->bad) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory for the calibration statistics");
    }
    for (int i = 0; i < BATCH; i++) llm_seq_free(seqs[i]);
    llm_engine_free(e);
    return err;
}

/* The weight of node `node` (input 1), converted to f32 in place so it can be rescaled. */
static smelt_err *f32_weight(smelt_model *m, const char *node, int64_t d0, int64_t d1, float **out, size_t *orig_bytes)
{
    const smelt_node *n = NULL;
    for (int i = 0; i < m->n_nodes && !n; i++)
        if (strcmp(m->nodes[i].name, node) == 0) n = &m->nodes[i];
    if (!n || n->n_inputs < 2) return SMELT_ERR(SMELT_E_CORRUPT, "the graph has no node '%s' with a weight", node);
    smelt_tensor *t = smelt_model_find(m, n->inputs[1]);
    int ndim = d1 < 0 ? 1 : 2;
    if (!t || t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1))
        return SMELT_ERR(SMELT_E_CORRUPT, "node '%s': weight '%s' is missing or not of the model's shape", node, n->inputs[1]);
    if (t->quant.kind != SMELT_QUANT_NONE || !smelt_dtype_traits(t->dtype)->is_float)
        return SMELT_ERR(SMELT_E_INVALID, "weight '%s' is already quantized (%s); SmoothQuant needs the float model", t->name, smelt_dtype_name(t->dtype));
    size_t n_el = (size_t)d0 * (size_t)(d1 < 0 ? 1 : d1);
    if (ndim == 2) *orig_bytes += t->nbytes;
    if (t->dtype != SMELT_DT_F32) {
        float *w = smelt_model_alloc(m, n_el * sizeof *w);
        if (!w) return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
        smelt_convert_float(w, SMELT_DT_F32, t->data, t->dtype, n_el);
        t->data = w;
        t->dtype = SMELT_DT_F32;
        t->nbytes = n_el * sizeof *w;
    }
    /* the mapping may be read-only: always rescale a copy the model owns */
    else {
        float *w = smelt_model_alloc(m, n_el * sizeof *w);
        if (!w) return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
        memcpy(w, t->data, n_el * sizeof *w);
        t->data = w;
    }
    *out = t->data;
    return NULL;
}

/* max |W[:, j]| over a [rows, cols] matrix, into wmax (already holding earlier matrices' maxima) */
static void col_absmax(const float *w, int rows, int cols, float *wmax)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) wmax[j] = fmaxf(wmax[j], fabsf(w[(size_t)r * cols + j]));
}

static float smooth_scale(float a, float w, double alpha)
{
    /* a channel that never fired, or weights that are all zero: nothing to migrate */
    if (!(a > 0) || !(w > 0)) return 1.0f;
    double s = pow(a, alpha) / pow(w, 1.0 - alpha);
    return (float)fmin(fmax(s, 1e-5), 1e5);
}

static void scale_cols(float *w, int rows, int cols, const float *s)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) w[(size_t)r * cols + j] *= s[j];
}

static void divide_rows(float *w, int rows, int cols, const float *s)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) w[(size_t)r * cols + j] /= s[r];
}

static smelt_err *smooth_layer(smelt_model *m, int l, const act_stats *st, double alpha, float *wmax, float *s, size_t *orig_bytes)
{
    const smelt_llm_config *c = &m->llm;
    int H = c->hidden, F = c->ffn, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, group = c->n_heads / c->n_kv_heads;
    char nm[64];
    float *ln1, *ln2, *q, *k, *v, *o, *gate, *up, *down;
#define W(fmt, d0, d1, p) SMELT_TRY(f32_weight(m, (snprintf(nm, sizeof nm, fmt, l), nm), d0, d1, p, orig_bytes))
    W("l%d.input_layernorm", H, -1, &ln1);
    W("l%d.post_attention_layernorm", H, -1, &ln2);
    W("l%d.q_proj", qd, H, &q);
    W("l%d.k_proj", kvd, H, &k);
    W("l%d.v_proj", kvd, H, &v);
    W("l%d.o_proj", H, qd, &o);
    W("l%d.gate_proj", F, H, &gate);
    W("l%d.up_proj", F, H, &up);
    W("l%d.down_proj", H, F, &down);
#undef W
    const float *a_qkv = st->amax[LLM_IN_QKV] + (size_t)l * H, *a_mlp = st->amax[LLM_IN_MLP] + (size_t)l * H;
    const float *a_o = st->amax[LLM_IN_O] + (size_t)l * qd, *a_down = st->amax[LLM_IN_DOWN] + (size_t)l * F;

    /* o_proj through v_proj's rows: one s per (kv head, dim), maxima over the heads sharing it.
     * Computed from the weights before any fold below touches v_proj. */
    memset(wmax, 0, (size_t)qd * sizeof *wmax);
    col_absmax(o, H, qd, wmax);
    float *s_o = s; /* [kvd], then expanded to [qd] after it */
    for (int kv = 0; kv < c->n_kv_heads; kv++)
        for (int d = 0; d < hd; d++) {
            float a = 0, w = 0;
            for (int g = 0; g < group; g++) {
                int ch = (kv * group + g) * hd + d;
                a = fmaxf(a, a_o[ch]);
                w = fmaxf(w, wmax[ch]);
            }
            s_o[kv * hd + d] = smooth_scale(a, w, alpha);
        }
    float *s_o_full = s + kvd;
    for (int h = 0; h < c->n_heads; h++)
        for (int d = 0; d < hd; d++) s_o_full[h * hd + d] = s_o[(h / group) * hd + d];
    divide_rows(v, kvd, H, s_o);
    scale_cols(o, H, qd, s_o_full);

    /* down_proj through up_proj's rows */
    memset(wmax, 0, (size_t)F * sizeof *wmax);
    col_absmax(down, H, F, wmax);
    for (int i = 0; i < F; i++) s[i] = smooth_scale(a_down[i], wmax[i], alpha);
    divide_rows(up, F, H, s);
    scale_cols(down, H, F, s);

    /* q/k/v through input_layernorm (v_proj's rows were rescaled above: a per-row factor does not
     * change which column holds a row's maximum, but it does change the maxima, so the weight side
     * uses q and k and v as they now are, which is the matrix that will be quantized) */
    memset(wmax, 0, (size_t)H * sizeof *wmax);
    col_absmax(q, qd, H, wmax);
    col_absmax(k, kvd, H, wmax);
    col_absmax(v, kvd, H, wmax);
    for (int j = 0; j < H; j++) s[j] = smooth_scale(a_qkv[j], wmax[j], alpha);
    for (int j = 0; j < H; j++) ln1[j] /= s[j];
    scale_cols(q, qd, H, s);
    scale_cols(k, kvd, H, s);
    scale_cols(v, kvd, H, s);

    /* gate/up through post_attention_layernorm */
    memset(wmax, 0, (size_t)H * sizeof *wmax);
    col_absmax(gate, F, H, wmax);
    col_absmax(up, F, H, wmax);
    for (int j = 0; j < H; j++) s[j] = smooth_scale(a_mlp[j], wmax[j], alpha);
    for (int j = 0; j < H; j++) ln2[j] /= s[j];
    scale_cols(gate, F, H, s);
    scale_cols(up, F, H, s);
    return NULL;
}

smelt_err *smoothquant_apply(smelt_model *m, const int32_t *calib, int n_calib, int window, double alpha, json_t **info, size_t *linear_bytes)
{
    *info = NULL;
    *linear_bytes = 0;
    if (!(alpha >= 0 && alpha <= 1)) return SMELT_ERR(SMELT_E_INVALID, "SmoothQuant alpha %g, expected between 0 and 1", alpha);
    if (m->kind != SMELT_KIND_LLM) return SMELT_ERR(SMELT_E_UNSUPPORTED, "SmoothQuant: not a language model (a %s graph)", m->arch);
    if (strcmp(m->llm.pos, "learned") == 0) return SMELT_ERR(SMELT_E_UNSUPPORTED, "SmoothQuant: GPT-2 models are not supported yet (Llama family only)");
    if (!calib || n_calib < 1 || window < 2) return SMELT_ERR(SMELT_E_INVALID, "w8a8 needs calibration text (--calib FILE[:TOKENS]) for SmoothQuant");
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].quant.kind != SMELT_QUANT_NONE)
            return SMELT_ERR(SMELT_E_INVALID, "the model is already quantized (tensor '%s' is %d-bit); quantize the float model", m->tensors[i].name,
                             m->tensors[i].quant.bits);
    const smelt_llm_config *c = &m->llm;
    act_stats st = {.n_layers = c->n_layers};
    smelt_err *err = collect(m, calib, n_calib, window, &st);
    for (int k = 0; !err && k < LLM_IN_COUNT; k++)
        if (!st.amax[k]) err = SMELT_ERR(SMELT_E_INVALID, "SmoothQuant: the calibration pass saw no inputs of some projections");
    int qd = c->n_heads * c->head_dim, wide = c->ffn > qd + c->hidden ? c->ffn : qd + c->hidden;
    wide = wide > 2 * qd ? wide : 2 * qd;
    float *wmax = malloc((size_t)wide * sizeof *wmax), *s = malloc((size_t)wide * sizeof *s);
    if (!err && (!wmax || !s)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int l = 0; !err && l < c->n_layers; l++) err = smooth_layer(m, l, &st, alpha, wmax, s, linear_bytes);
    free(wmax);
    free(s);
    for (int k = 0; k < LLM_IN_COUNT; k++) free(st.amax[k]);
    if (err) return err;
    *info = json_pack("{s:f, s:i, s:i, s:s}", "alpha", alpha, "calib_windows", n_calib, "calib_window", window, "folded",
                      "q/k/v: input_layernorm; gate/up: post_attention_layernorm; o_proj: v_proj rows (shared across a kv head's query heads); "
                      "down_proj: up_proj rows");
    return *info ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}

smelt_err *w8a8_record(smelt_model *m, bool w8a8, json_t *sq, bool kv8)
{
    json_t *q = json_object_get(m->meta, "quantization");
    if (!q) {
        json_decref(sq);
        return SMELT_ERR(SMELT_E_INVALID, "the model has no quantization record to extend");
    }
    int rc = 0;
    if (w8a8) {
        rc |= json_object_set_new(q, "scheme", json_string("w8a8"));
        rc |= json_object_set_new(q, "activations", json_string("int8"));
        rc |= json_object_set_new(q, "activation_quant", json_string("dynamic, symmetric, one scale a token"));
        if (sq) rc |= json_object_set_new(q, "smoothquant", sq);
    } else {
        json_decref(sq);
    }
    if (kv8) {
        rc |= json_object_set_new(q, "kv_cache", json_string("int8"));
        rc |= json_object_set_new(q, "kv_cache_scales", json_string("one a token and kv head"));
    }
    return rc ? SMELT_ERR(SMELT_E_NOMEM, "out of memory") : NULL;
}
