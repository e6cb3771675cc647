/* The decoder graph for Hugging Face checkpoints: which weights each family has, their shapes, and
 * the high-level nodes (domain "smelt") that connect them. The runtime executes these nodes; the
 * quantizer finds Linear weights through them. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf_config.h"
#include "formats/hf_model.h"

typedef struct {
    smelt_model *m;
    const char *source;
    smelt_strmap used; /* weights referenced by a node */
    smelt_err *err;
} builder;

/* Checks weight `name` exists with the given shape (ndim 1 or 2) and marks it used. */
static bool want(builder *b, const char *name, int ndim, int64_t d0, int64_t d1)
{
    if (b->err) return false;
    smelt_tensor *t = smelt_model_find(b->m, name);
    if (!t) {
        b->err = SMELT_ERR(SMELT_E_CORRUPT, "%s: weight '%s' is missing", b->source, name);
        return false;
    }
    int64_t shape[2] = {d0, d1};
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[96], exp[96];
        b->err = SMELT_ERR(SMELT_E_CORRUPT, "%s: weight '%s' has shape %s, expected %s", b->source, name, smelt_shape_str(t->ndim, t->shape, got, sizeof got),
                           smelt_shape_str(ndim, shape, exp, sizeof exp));
        return false;
    }
    if (!smelt_dtype_traits(t->dtype)->is_float && t->quant.kind == SMELT_QUANT_NONE) {
        b->err = SMELT_ERR(SMELT_E_CORRUPT, "%s: weight '%s' has dtype %s, expected a floating-point type", b->source, name, smelt_dtype_name(t->dtype));
        return false;
    }
    if (!smelt_strmap_put(&b->used, name, strlen(name), 1)) b->err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    return !b->err;
}

static smelt_node *node(builder *b, const char *op, const char *name, int n_in, const char *const *in, const char *out)
{
    if (b->err) return NULL;
    smelt_node *n = smelt_model_add_node(b->m, op, "smelt", name, n_in, in, 1, &out);
    if (!n) b->err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    return n;
}

/* Linear: y = x W^T (+ bias); optional bias when has_bias. */
static void linear(builder *b, const char *name, const char *x, const char *wname, const char *bname, int64_t out, int64_t in, const char *y)
{
    if (!want(b, wname, 2, out, in)) return;
    if (bname && !want(b, bname, 1, out, 0)) return;
    const char *ins[3] = {x, wname, bname ? bname : ""};
    smelt_node *n = node(b, "Linear", name, bname ? 3 : 2, ins, y);
    if (n) smelt_node_set_int(n, "out_features", out);
}

static void set_attrs_attention(smelt_node *n, const smelt_llm_config *c)
{
    if (!n) return;
    smelt_node_set_int(n, "n_heads", c->n_heads);
    smelt_node_set_int(n, "n_kv_heads", c->n_kv_heads);
    smelt_node_set_int(n, "head_dim", c->head_dim);
    smelt_node_set_int(n, "causal", 1);
}

#define NM(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static void build_llama(builder *b)
{
    const smelt_llm_config *c = &b->m->llm;
    int64_t H = c->hidden, q_out = (int64_t)c->n_heads * c->head_dim, kv_out = (int64_t)c->n_kv_heads * c->head_dim;
    char w[160], bias[160], nm[96], h[32], hn[32];
    want(b, "model.embed_tokens.weight", 2, c->vocab_size, H);
    const char *emb_in[2] = {"input_ids", "model.embed_tokens.weight"};
    node(b, "Embedding", "embed", 2, emb_in, "h.0");
    for (int l = 0; l < c->n_layers && !b->err; l++) {
        char x[32], q[32], k[32], v[32], qr[32], kr[32], a[32], o[32], h1[32], x2[32], g[32], u[32], s[32], d[32];
        NM(h, "h.%d", l);
        NM(x, "l%d.attn_in", l), NM(q, "l%d.q", l), NM(k, "l%d.k", l), NM(v, "l%d.v", l), NM(qr, "l%d.q_rope", l), NM(kr, "l%d.k_rope", l);
        NM(a, "l%d.attn", l), NM(o, "l%d.attn_out", l), NM(h1, "l%d.resid", l), NM(x2, "l%d.mlp_in", l), NM(g, "l%d.gate", l), NM(u, "l%d.up", l);
        NM(s, "l%d.swiglu", l), NM(d, "l%d.mlp_out", l);
        NM(w, "model.layers.%d.input_layernorm.weight", l);
        want(b, w, 1, H, 0);
        const char *n1[2] = {h, w};
        smelt_node *n = node(b, "RMSNorm", NM(nm, "l%d.input_layernorm", l), 2, n1, x);
        if (n) smelt_node_set_float(n, "eps", c->norm_eps);
        static const char *const qkv[3] = {"q", "k", "v"};
        const char *qkv_out[3] = {q, k, v};
        for (int i = 0; i < 3; i++) {
            NM(w, "model.layers.%d.self_attn.%s_proj.weight", l, qkv[i]);
            NM(bias, "model.layers.%d.self_attn.%s_proj.bias", l, qkv[i]);
            linear(b, NM(nm, "l%d.%s_proj", l, qkv[i]), x, w, c->attn_qkv_bias ? bias : NULL, i == 0 ? q_out : kv_out, H, qkv_out[i]);
        }
        const char *rq[1] = {q}, *rk[1] = {k};
        n = node(b, "RoPE", NM(nm, "l%d.rope_q", l), 1, rq, qr);
        if (n) smelt_node_set_float(n, "theta", c->rope_theta), smelt_node_set_int(n, "head_dim", c->head_dim);
        n = node(b, "RoPE", NM(nm, "l%d.rope_k", l), 1, rk, kr);
        if (n) smelt_node_set_float(n, "theta", c->rope_theta), smelt_node_set_int(n, "head_dim", c->head_dim);
        const char *at[3] = {qr, kr, v};
        set_attrs_attention(node(b, "Attention", NM(nm, "l%d.attention", l), 3, at, a), c);
        NM(w, "model.layers.%d.self_attn.o_proj.weight", l);
        NM(bias, "model.layers.%d.self_attn.o_proj.bias", l);
        linear(b, NM(nm, "l%d.o_proj", l), a, w, c->attn_out_bias ? bias : NULL, H, q_out, o);
        const char *r1[2] = {h, o};
        node(b, "Add", NM(nm, "l%d.attn_residual", l), 2, r1, h1);
        NM(w, "model.layers.%d.post_attention_layernorm.weight", l);
        want(b, w, 1, H, 0);
        const char *n2[2] = {h1, w};
        n = node(b, "RMSNorm", NM(nm, "l%d.post_attention_layernorm", l), 2, n2, x2);
        if (n) smelt_node_set_float(n, "eps", c->norm_eps);
        static const char *const gu[2] = {"gate", "up"};
        const char *gu_out[2] = {g, u};
        for (int i = 0; i < 2; i++) {
            NM(w, "model.layers.%d.mlp.%s_proj.weight", l, gu[i]);
            NM(bias, "model.layers.%d.mlp.%s_proj.bias", l, gu[i]);
            linear(b, NM(nm, "l%d.%s_proj", l, gu[i]), x2, w, c->mlp_bias ? bias : NULL, c->ffn, H, gu_out[i]);
        }
        const char *sw[2] = {g, u};
        node(b, "SwiGLU", NM(nm, "l%d.swiglu", l), 2, sw, s);
        NM(w, "model.layers.%d.mlp.down_proj.weight", l);
        NM(bias, "model.layers.%d.mlp.down_proj.bias", l);
        linear(b, NM(nm, "l%d.down_proj", l), s, w, c->mlp_bias ? bias : NULL, H, c->ffn, d);
        const char *r2[2] = {h1, d};
        node(b, "Add", NM(nm, "l%d.mlp_residual", l), 2, r2, NM(hn, "h.%d", l + 1));
    }
    NM(h, "h.%d", c->n_layers);
    want(b, "model.norm.weight", 1, H, 0);
    const char *fn[2] = {h, "model.norm.weight"};
    smelt_node *n = node(b, "RMSNorm", "final_norm", 2, fn, "final_hidden");
    if (n) smelt_node_set_float(n, "eps", c->norm_eps);
    linear(b, "lm_head", "final_hidden", c->tied_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", NULL, c->vocab_size, H, "logits");
}

static void build_gpt2(builder *b, const char *p)
{
    const smelt_llm_config *c = &b->m->llm;
    int64_t H = c->hidden;
    char w[160], bias[160], nm[96], h[32], hn[32], wte[96], wpe[96];
    NM(wte, "%swte.weight", p);
    NM(wpe, "%swpe.weight", p);
    want(b, wte, 2, c->vocab_size, H);
    want(b, wpe, 2, c->max_pos, H);
    const char *e1[2] = {"input_ids", wte}, *e2[2] = {"input_ids", wpe}, *e3[2] = {"tok_emb", "pos_emb"};
    node(b, "Embedding", "embed", 2, e1, "tok_emb");
    node(b, "PositionEmbedding", "embed_pos", 2, e2, "pos_emb");
    node(b, "Add", "embed_sum", 2, e3, "h.0");
    for (int l = 0; l < c->n_layers && !b->err; l++) {
        char x[32], qkv[32], q[32], k[32], v[32], a[32], o[32], h1[32], x2[32], f[32], g[32], d[32];
        NM(h, "h.%d", l);
        NM(x, "l%d.attn_in", l), NM(qkv, "l%d.qkv", l), NM(q, "l%d.q", l), NM(k, "l%d.k", l), NM(v, "l%d.v", l), NM(a, "l%d.attn", l);
        NM(o, "l%d.attn_out", l), NM(h1, "l%d.resid", l), NM(x2, "l%d.mlp_in", l), NM(f, "l%d.fc", l), NM(g, "l%d.gelu", l), NM(d, "l%d.mlp_out", l);
        NM(w, "%sh.%d.ln_1.weight", p, l);
        NM(bias, "%sh.%d.ln_1.bias", p, l);
        want(b, w, 1, H, 0), want(b, bias, 1, H, 0);
        const char *n1[3] = {h, w, bias};
        smelt_node *n = node(b, "LayerNorm", NM(nm, "l%d.ln_1", l), 3, n1, x);
        if (n) smelt_node_set_float(n, "eps", c->norm_eps);
        NM(w, "%sh.%d.attn.c_attn.weight", p, l);
        NM(bias, "%sh.%d.attn.c_attn.bias", p, l);
        linear(b, NM(nm, "l%d.c_attn", l), x, w, bias, 3 * H, H, qkv);
        const char *sp_in[1] = {qkv}, *sp_out[3] = {q, k, v};
        if (!b->err) {
            smelt_node *sn = smelt_model_add_node(b->m, "Split", "smelt", NM(nm, "l%d.split_qkv", l), 1, sp_in, 3, sp_out);
            if (!sn) b->err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        }
        const char *at[3] = {q, k, v};
        set_attrs_attention(node(b, "Attention", NM(nm, "l%d.attention", l), 3, at, a), c);
        NM(w, "%sh.%d.attn.c_proj.weight", p, l);
        NM(bias, "%sh.%d.attn.c_proj.bias", p, l);
        linear(b, NM(nm, "l%d.c_proj", l), a, w, bias, H, H, o);
        const char *r1[2] = {h, o};
        node(b, "Add", NM(nm, "l%d.attn_residual", l), 2, r1, h1);
        NM(w, "%sh.%d.ln_2.weight", p, l);
        NM(bias, "%sh.%d.ln_2.bias", p, l);
        want(b, w, 1, H, 0), want(b, bias, 1, H, 0);
        const char *n2[3] = {h1, w, bias};
        n = node(b, "LayerNorm", NM(nm, "l%d.ln_2", l), 3, n2, x2);
        if (n) smelt_node_set_float(n, "eps", c->norm_eps);
        NM(w, "%sh.%d.mlp.c_fc.weight", p, l);
        NM(bias, "%sh.%d.mlp.c_fc.bias", p, l);
        linear(b, NM(nm, "l%d.c_fc", l), x2, w, bias, c->ffn, H, f);
        const char *gi[1] = {f};
        node(b, "GeluTanh", NM(nm, "l%d.gelu", l), 1, gi, g);
        NM(w, "%sh.%d.mlp.c_proj.weight", p, l);
        NM(bias, "%sh.%d.mlp.c_proj.bias", p, l);
        linear(b, NM(nm, "l%d.mlp_c_proj", l), g, w, bias, H, c->ffn, d);
        const char *r2[2] = {h1, d};
        node(b, "Add", NM(nm, "l%d.mlp_residual", l), 2, r2, NM(hn, "h.%d", l + 1));
    }
    NM(h, "h.%d", c->n_layers);
    NM(w, "%sln_f.weight", p);
    NM(bias, "%sln_f.bias", p);
    want(b, w, 1, H, 0), want(b, bias, 1, H, 0);
    const char *fn[3] = {h, w, bias};
    smelt_node *n = node(b, "LayerNorm", "final_norm", 3, fn, "final_hidden");
    if (n) smelt_node_set_float(n, "eps", c->norm_eps);
    linear(b, "lm_head", "final_hidden", wte, NULL, c->vocab_size, H, "logits");
}

/* Buffers some exporters save next to the weights; they carry no parameters smelt needs. */
static bool ignorable(const char *name, bool tied)
{
    size_t n = strlen(name);
#define ENDS(s) (n >= sizeof(s) - 1 && strcmp(name + n - (sizeof(s) - 1), s) == 0)
    return ENDS("rotary_emb.inv_freq") || ENDS(".attn.bias") || ENDS(".attn.masked_bias") || (tied && strcmp(name, "lm_head.weight") == 0);
#undef ENDS
}

/* The prefix GPT-2 checkpoints put before weight names: "transformer." or none. */
const char *hf_gpt2_prefix(const smelt_model *m)
{
    return smelt_model_find(m, "transformer.wte.weight") ? "transformer." : "";
}

static smelt_err *set_io(smelt_model *m)
{
    m->inputs = calloc(1, sizeof *m->inputs);
    m->outputs = calloc(1, sizeof *m->outputs);
    if (!m->inputs || !m->outputs) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    m->n_inputs = m->n_outputs = 1;
    m->inputs[0] = (smelt_value){.name = strdup("input_ids"), .dtype = SMELT_DT_I64, .ndim = 2, .dims = {-1, -1},
                                 .dim_names = {strdup("batch"), strdup("seq")}};
    m->outputs[0] = (smelt_value){.name = strdup("logits"), .dtype = SMELT_DT_F32, .ndim = 3, .dims = {-1, -1, m->llm.vocab_size},
                                  .dim_names = {strdup("batch"), strdup("seq")}};
    if (!m->inputs[0].name || !m->outputs[0].name) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    return NULL;
}

smelt_err *hf_build_graph(smelt_model *m, const char *source)
{
    builder b = {.m = m, .source = source};
    if (hf_is_llama_family(m->arch)) build_llama(&b);
    else if (strcmp(m->arch, "gpt2") == 0) build_gpt2(&b, hf_gpt2_prefix(m));
    else b.err = SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: architecture '%s' is not supported (supported: %s)", source, m->arch, HF_SUPPORTED_TYPES);
    for (int i = 0; i < m->n_tensors && !b.err; i++) {
        const smelt_tensor *t = &m->tensors[i];
        if (smelt_strmap_get(&b.used, t->name, strlen(t->name), NULL) || ignorable(t->name, m->llm.tied_embeddings)) continue;
        /* quantization scales/zero points belong to a used weight */
        bool aux = false;
        for (int k = 0; k < m->n_tensors && !aux; k++) {
            const smelt_quant *q = &m->tensors[k].quant;
            aux = (q->scale && strcmp(q->scale, t->name) == 0) || (q->zero && strcmp(q->zero, t->name) == 0);
        }
        if (!aux)
            b.err = SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s' is not a weight of a %s model with this config (it would be ignored)", source, t->name, m->arch);
    }
    if (!b.err) b.err = set_io(m);
    smelt_strmap_free(&b.used);
    return b.err;
}
