/* What runtime/llm_*.c share: the bound weights, the sequence's KV cache and the kernels. */
#ifndef SMELT_LLM_INTERNAL_H
#define SMELT_LLM_INTERNAL_H

#include "runtime/cpu/qgemm_i8.h"
#include "runtime/cpu/qmatmul.h"
#include "runtime/cpu/qmatmul_x8.h"
#include "runtime/llm.h"

/* y[T, out] = x[T, in] · w[out, in]^T (+ b); a quantized weight is read through qm instead of w */
typedef struct {
    const float *w;
    const float *b; /* NULL when there is no bias */
    int out, in;
    bool quantized;
    qmat qm;
    bool x8; /* qm at few rows of x with int8 activations (qmat_mul_x8); SMELT_QMAT_ACT=f32 keeps f32 */
    bool a8;  /* w8a8: int8 activations per token, integer products through a8m */
    i8mat a8m; /* qm's int8 weights repacked for the w8a8 kernels (owned) */
} llm_linear;

typedef struct {
    const float *w;
    const float *b; /* LayerNorm's bias; NULL for RMSNorm */
} llm_norm;

typedef struct {
    llm_norm ln1, ln2;
    llm_linear q, k, v; /* Llama family */
    llm_linear qkv;     /* GPT-2's fused projection: q, k, v side by side in the output */
    llm_linear o;
    llm_linear gate, up, down; /* SwiGLU MLP */
    llm_linear fc, proj;       /* GELU MLP */
} llm_layer;

struct smelt_graph;

struct llm_engine {
    const smelt_model *m;
    struct smelt_graph *graph; /* an ONNX decoder run by the graph executor (no KV cache) */
    smelt_llm_config c;
    bool gpt2;
    const float *tok_emb; /* [vocab, hidden] */
    const float *pos_emb; /* [max_pos, hidden] (GPT-2) */
    llm_layer *layers;
    llm_norm final_norm;
    llm_linear head;
    void **owned; /* f32 copies of bf16/f16 weights */
    int n_owned;
    size_t weight_bytes;
    float *rope_inv_freq; /* [head_dim / 2] */
    /* from the artifact's meta.quantization: "activations": "int8" runs every int8 linear as
     * w8a8; "kv_cache": "int8" keeps K and V in int8 with a scale per (token, kv head) */
    bool w8a8, kv8;
    llm_capture_fn capture;
    void *capture_ctx;
    int stop_after_layer;
    int stop_kind; /* an llm_input_kind: the pass ends once stop_after_layer captured it */
    /* the blocks bound: all, or first..last of a calibration engine (llm_engine_new_blocks),
     * which binds no head and the embeddings only when first is 0 */
    int first, last;
    bool blocks_only;
    llm_input_kind start; /* where a one-block calibration engine's pass starts (llm_engine_set_start) */
    /* scratch, grown to the largest batch seen */
    int cap_tokens;
    float *x, *xn, *q, *k, *v, *att, *h1, *h2;
};

struct llm_seq {
    llm_engine *e;
    int len, cap;
    float **k, **v;  /* per layer: [cap][n_kv_heads * head_dim] (f32 caches) */
    int8_t **k8, **v8; /* kv8 instead: per layer [cap][n_kv_heads * head_dim] int8 */
    float **ks, **vs;  /* kv8: per layer [cap][n_kv_heads] scales */
    int32_t *tokens; /* graph engines: the tokens so far (cap of them), recomputed each step */
};

/* Binding (llm_weights.c): finds every weight through the graph's node names, checks shapes,
 * widens non-f32 weights. */
smelt_err *llm_bind_weights(llm_engine *e);

/* ONNX decoders (llm_graph.c): an engine over a graph with input 'input_ids' [batch, seq] (i64)
 * and output 'logits' [batch, seq, vocab]; each forward recomputes every sequence in full. */
smelt_err *llm_graph_engine_init(llm_engine *e, int max_pos);
void llm_graph_engine_fini(llm_engine *e);
smelt_err *llm_graph_forward(llm_engine *e, const llm_batch_item *items, int n_items, float *logits);

/* Frees the w8a8 repacked weights (llm_weights.c). */
void llm_free_packed(llm_engine *e);

/* kv8 (llm_kv8.c): x [n_heads * head_dim] f32 into q (int8, same layout) and scale [n_heads],
 * symmetric per head: scale = max|x_h| / 127. */
void llm_kv8_quantize(const float *x, int n_heads, int head_dim, int8_t *q, float *scale);
/* Rows [0, n) of kv head h from an int8 cache (rows kv_dim apart, n_heads scales a row) into
 * out [n][head_dim]. */
void llm_kv8_dequant_head(const int8_t *q, const float *scale, int n, int n_heads, int head_dim, int h, float *out);

/* Kernels (llm_kernels.c); rows are contiguous with the given width. */
void llm_linear_apply(const llm_linear *l, const float *x, int T, float *y);
void llm_rmsnorm(float *out, const float *x, const float *w, int T, int dim, float eps);
void llm_layernorm(float *out, const float *x, const float *w, const float *b, int T, int dim, float eps);
/* Rotates each head of x[T, n_heads * head_dim] by its token's position (Hugging Face's
 * rotate-half pairing: element i with i + head_dim/2). */
void llm_rope(float *x, int T, int n_heads, int head_dim, const int *pos, const float *inv_freq);
void llm_swiglu(float *gate_io, const float *up, size_t n);
void llm_gelu_tanh(float *x, size_t n);

/* One sequence's run of new tokens in the batch: rows [row0, row0 + n) at positions pos0... */
typedef struct {
    llm_seq *seq;
    int row0, n, pos0;
} llm_attn_seg;

/* Causal attention of T new tokens against their sequences' caches (their own K/V already
 * written). Token t belongs to seqs[t] at position pos[t]; q and out are [T, n_heads*head_dim].
 * Runs of many tokens (prefill) go through sgemm, single tokens (decode) through a threaded loop. */
typedef struct {
    int n_heads, n_kv_heads, head_dim, layer;
    const float *q;
    float *out;
    llm_seq *const *seqs;
    const int *pos;
    const llm_attn_seg *segs;
    int n_segs;
} llm_attn_args;
void llm_attention(const llm_attn_args *a, int T);

#endif
