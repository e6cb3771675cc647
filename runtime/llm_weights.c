/* Binding a decoder's weights for the engine: every weight is found through the node that uses it
 * (by the node names formats/hf_graph.c gives), so a later stage that swaps a node's weight tensor
 * (quantization, distillation) is picked up without name patterns here. f32 weights are used where
 * they lie (often the mmapped file); bf16/f16 ones are widened once into copies the engine owns. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/llm_internal.h"

/* The ops of formats/hf_graph.c's decoder graphs; the engine runs exactly these. */
static const char *const known_ops[] = {"Embedding", "PositionEmbedding", "RMSNorm", "LayerNorm", "Linear", "RoPE",
                                        "Attention", "Add", "SwiGLU", "GeluTanh", "Split"};

static const smelt_node *find_node(const smelt_model *m, const char *name)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0) return &m->nodes[i];
    return NULL;
}

/* The f32 view of tensor `name`, shape-checked (d1 < 0: a vector of d0). */
static smelt_err *f32_of(llm_engine *e, const char *node, const char *name, int64_t d0, int64_t d1, const float **out)
{
    const smelt_tensor *t = smelt_model_find(e->m, name);
    if (!t) return SMELT_ERR(SMELT_E_CORRUPT, "node '%s': weight '%s' is missing", node, name);
    int ndim = d1 < 0 ? 1 : 2;
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[64], want[64];
        int64_t ws[2] = {d0, d1};
        return SMELT_ERR(SMELT_E_CORRUPT, "node '%s': weight '%s' has shape %s, expected %s", node, name, smelt_shape_str(t->ndim, t->shape, got, sizeof got),
                         smelt_shape_str(ndim, ws, want, sizeof want));
    }
    if (t->quant.kind != SMELT_QUANT_NONE)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "weight '%s' is quantized (%d-bit); this engine runs f32, f16 and bf16 weights", name, t->quant.bits);
    size_t n = (size_t)smelt_shape_numel(t->ndim, t->shape);
    e->weight_bytes += n * sizeof(float); /* what the forward reads: the f32 data or its widened copy */
    if (t->dtype == SMELT_DT_F32) {
        *out = t->data;
        return NULL;
    }
    /* a tied head reuses the embedding's widened copy */
    ptrdiff_t idx = t - e->m->tensors;
    if (e->owned[idx]) {
        *out = e->owned[idx];
        return NULL;
    }
    float *w = malloc(n * sizeof *w);
    if (!w) return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory widening to f32", name);
    if (!smelt_convert_float(w, SMELT_DT_F32, t->data, t->dtype, n)) {
        free(w);
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "weight '%s' has dtype %s; the engine runs f32, f16 and bf16 weights", name, smelt_dtype_name(t->dtype));
    }
    e->owned[idx] = w;
    *out = w;
    return NULL;
}

static smelt_err *node_of(llm_engine *e, const char *name, const char *op, const smelt_node **out)
{
    *out = find_node(e->m, name);
    if (!*out) return SMELT_ERR(SMELT_E_CORRUPT, "the graph has no node '%s' (%s)", name, op);
    if (strcmp((*out)->op, op) != 0) return SMELT_ERR(SMELT_E_CORRUPT, "node '%s' is %s, expected %s", name, (*out)->op, op);
    return NULL;
}

/* A quantized weight as the kernels read it: q, scale [out, groups], zero [out, groups]. */
static smelt_err *bind_quantized(llm_engine *e, const char *node, const smelt_tensor *t, int out, int in, llm_linear *l)
{
    const smelt_quant *q = &t->quant;
    int group = q->kind == SMELT_QUANT_PER_CHANNEL ? in : q->group_size;
    if (t->ndim != 2 || t->shape[0] != out || t->shape[1] != in)
        return SMELT_ERR(SMELT_E_CORRUPT, "node '%s': quantized weight '%s' is not [%d, %d]", node, t->name, out, in);
    if (!(q->bits == 8 && q->kind == SMELT_QUANT_PER_CHANNEL && q->symmetric && t->dtype == SMELT_DT_I8) &&
        !(q->bits == 4 && q->kind == SMELT_QUANT_GROUP && group % 32 == 0 && in % group == 0 && q->axis == 0 &&
          t->dtype == (q->symmetric ? SMELT_DT_I4 : SMELT_DT_U4)))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "weight '%s': this quantization (%d-bit, %s, group %d, dtype %s) is not one the engine runs (w8 per "
                         "channel; w4 in groups of a multiple of 32)", t->name, q->bits, q->symmetric ? "symmetric" : "asymmetric", group,
                         smelt_dtype_name(t->dtype));
    int ng = in / group;
    const smelt_tensor *sc = smelt_model_find(e->m, q->scale), *z = q->zero ? smelt_model_find(e->m, q->zero) : NULL;
    if (!sc || sc->dtype != SMELT_DT_F32 || smelt_shape_numel(sc->ndim, sc->shape) != (int64_t)out * ng)
        return SMELT_ERR(SMELT_E_CORRUPT, "weight '%s': scale tensor '%s' is not %d x %d f32 values", t->name, q->scale, out, ng);
    if (!q->symmetric && (!z || z->dtype != SMELT_DT_U8 || smelt_shape_numel(z->ndim, z->shape) != (int64_t)out * ng))
        return SMELT_ERR(SMELT_E_CORRUPT, "weight '%s': zero-point tensor '%s' is not %d x %d u8 values", t->name, q->zero ? q->zero : "", out, ng);
    l->quantized = true;
    l->qm = (qmat){q->bits, out, in, group, t->data, sc->data, z ? z->data : NULL, false};
    l->x8 = qmat_x8_wanted();
    e->weight_bytes += qmat_bytes(&l->qm);
    /* the int8-activation kernels read their own copy in the decode layout (qmatmul.h: one stream
     * a four-row step); the model keeps its row-after-row bytes. A weight bound twice (tied)
     * shares the copy. */
    ptrdiff_t idx = t - e->m->tensors;
    if (l->x8 && qmat_x8_supported(&l->qm) && qmat_can_interleave(&l->qm)) {
        if (!e->owned[idx]) {
            void *ilv = malloc(qmat_interleaved_bytes(&l->qm));
            if (!ilv) return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory repacking for decode", t->name);
            qmat_interleave(&l->qm, ilv);
            e->owned[idx] = ilv;
        }
        l->qm.q = e->owned[idx];
        l->qm.interleaved = true;
    }
    if (e->w8a8 && q->bits == 8) {
        if (!i8mat_pack(&l->a8m, t->data, sc->data, out, in)) return SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory repacking for w8a8", t->name);
        l->a8 = true;
    }
    return NULL;
}

static smelt_err *bind_linear(llm_engine *e, const char *name, int out, int in, llm_linear *l)
{
    const smelt_node *n;
    SMELT_TRY(node_of(e, name, "Linear", &n));
    if (n->n_inputs < 2) return SMELT_ERR(SMELT_E_CORRUPT, "node '%s' (Linear) has no weight input", name);
    l->out = out;
    l->in = in;
    const smelt_tensor *t = smelt_model_find(e->m, n->inputs[1]);
    if (t && t->quant.kind != SMELT_QUANT_NONE) SMELT_TRY(bind_quantized(e, name, t, out, in, l));
    else SMELT_TRY(f32_of(e, name, n->inputs[1], out, in, &l->w));
    l->b = NULL;
    if (n->n_inputs > 2 && n->inputs[2][0]) SMELT_TRY(f32_of(e, name, n->inputs[2], out, -1, &l->b));
    return NULL;
}

static smelt_err *bind_norm(llm_engine *e, const char *name, llm_norm *nm)
{
    const char *op = e->gpt2 ? "LayerNorm" : "RMSNorm";
    const smelt_node *n;
    SMELT_TRY(node_of(e, name, op, &n));
    if (n->n_inputs < (e->gpt2 ? 3 : 2)) return SMELT_ERR(SMELT_E_CORRUPT, "node '%s' (%s) lacks its weight%s", name, op, e->gpt2 ? " or bias" : "");
    SMELT_TRY(f32_of(e, name, n->inputs[1], e->c.hidden, -1, &nm->w));
    nm->b = NULL;
    if (e->gpt2) SMELT_TRY(f32_of(e, name, n->inputs[2], e->c.hidden, -1, &nm->b));
    return NULL;
}

static smelt_err *bind_layer(llm_engine *e, int l, llm_layer *L)
{
    const smelt_llm_config *c = &e->c;
    int H = c->hidden, q_out = c->n_heads * c->head_dim, kv_out = c->n_kv_heads * c->head_dim;
    char nm[64];
#define NAME(fmt) (snprintf(nm, sizeof nm, fmt, l), nm)
    if (e->gpt2) {
        SMELT_TRY(bind_norm(e, NAME("l%d.ln_1"), &L->ln1));
        SMELT_TRY(bind_linear(e, NAME("l%d.c_attn"), 3 * H, H, &L->qkv));
        SMELT_TRY(bind_linear(e, NAME("l%d.c_proj"), H, H, &L->o));
        SMELT_TRY(bind_norm(e, NAME("l%d.ln_2"), &L->ln2));
        SMELT_TRY(bind_linear(e, NAME("l%d.c_fc"), c->ffn, H, &L->fc));
        SMELT_TRY(bind_linear(e, NAME("l%d.mlp_c_proj"), H, c->ffn, &L->proj));
    } else {
        SMELT_TRY(bind_norm(e, NAME("l%d.input_layernorm"), &L->ln1));
        SMELT_TRY(bind_linear(e, NAME("l%d.q_proj"), q_out, H, &L->q));
        SMELT_TRY(bind_linear(e, NAME("l%d.k_proj"), kv_out, H, &L->k));
        SMELT_TRY(bind_linear(e, NAME("l%d.v_proj"), kv_out, H, &L->v));
        SMELT_TRY(bind_linear(e, NAME("l%d.o_proj"), H, q_out, &L->o));
        SMELT_TRY(bind_norm(e, NAME("l%d.post_attention_layernorm"), &L->ln2));
        SMELT_TRY(bind_linear(e, NAME("l%d.gate_proj"), c->ffn, H, &L->gate));
        SMELT_TRY(bind_linear(e, NAME("l%d.up_proj"), c->ffn, H, &L->up));
        SMELT_TRY(bind_linear(e, NAME("l%d.down_proj"), H, c->ffn, &L->down));
    }
#undef NAME
    return NULL;
}

static bool meta_is(const smelt_model *m, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(json_object_get(m->meta, "quantization"), key));
    return v && strcmp(v, want) == 0;
}

void llm_free_packed(llm_engine *e)
{
    for (int l = 0; e->layers && l < e->c.n_layers; l++) {
        llm_layer *L = &e->layers[l];
        llm_linear *ls[] = {&L->q, &L->k, &L->v, &L->qkv, &L->o, &L->gate, &L->up, &L->down, &L->fc, &L->proj};
        for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) i8mat_free(&ls[i]->a8m);
    }
}

static smelt_err *bind_embeddings(llm_engine *e)
{
    const smelt_llm_config *c = &e->c;
    const smelt_node *n;
    SMELT_TRY(node_of(e, "embed", "Embedding", &n));
    if (n->n_inputs < 2) return SMELT_ERR(SMELT_E_CORRUPT, "node 'embed' (Embedding) has no table");
    SMELT_TRY(f32_of(e, "embed", n->inputs[1], c->vocab_size, c->hidden, &e->tok_emb));
    if (e->gpt2) {
        SMELT_TRY(node_of(e, "embed_pos", "PositionEmbedding", &n));
        if (n->n_inputs < 2) return SMELT_ERR(SMELT_E_CORRUPT, "node 'embed_pos' (PositionEmbedding) has no table");
        SMELT_TRY(f32_of(e, "embed_pos", n->inputs[1], c->max_pos, c->hidden, &e->pos_emb));
    }
    return NULL;
}

smelt_err *llm_bind_weights(llm_engine *e)
{
    const smelt_model *m = e->m;
    const smelt_llm_config *c = &e->c;
    e->w8a8 = meta_is(m, "activations", "int8");
    e->kv8 = meta_is(m, "kv_cache", "int8");
    for (int i = 0; i < m->n_nodes; i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof known_ops / sizeof known_ops[0]; k++) known |= strcmp(m->nodes[i].op, known_ops[k]) == 0;
        if (!known)
            return SMELT_ERR(SMELT_E_UNSUPPORTED, "node '%s': op '%s' is not run by the language-model engine", m->nodes[i].name, m->nodes[i].op);
    }
    if (c->n_heads <= 0 || c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads != 0 || c->head_dim <= 0 || c->head_dim % 2 != 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "config: %d heads, %d kv heads, head_dim %d: expected heads a multiple of kv heads and an even head_dim",
                         c->n_heads, c->n_kv_heads, c->head_dim);
    e->owned = calloc((size_t)m->n_tensors + 1, sizeof *e->owned);
    e->n_owned = m->n_tensors;
    e->layers = calloc((size_t)c->n_layers + 1, sizeof *e->layers);
    e->rope_inv_freq = malloc((size_t)c->head_dim / 2 * sizeof(float));
    if (!e->owned || !e->layers || !e->rope_inv_freq) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    /* inv_freq_i = 1 / theta^(2i/d), in f32 as the reference implementation computes it */
    for (int i = 0; i < c->head_dim / 2; i++) e->rope_inv_freq[i] = 1.0f / powf((float)c->rope_theta, (float)(2 * i) / (float)c->head_dim);

    if (!e->blocks_only) e->first = 0, e->last = c->n_layers - 1;
    if (e->first == 0) SMELT_TRY(bind_embeddings(e));
    /* a token reads one row of the embedding tables, not the tables: they do not count (a tied
     * head reads the whole table, and counts as the head below) */
    e->weight_bytes = 0;
    for (int l = e->first; l <= e->last; l++) SMELT_TRY(bind_layer(e, l, &e->layers[l]));
    if (e->blocks_only) return NULL;
    SMELT_TRY(bind_norm(e, "final_norm", &e->final_norm));
    SMELT_TRY(bind_linear(e, "lm_head", c->vocab_size, c->hidden, &e->head));
    return NULL;
}
