/* The decoder forward pass over a ragged batch, and the sequences' KV caches.
 *
 * All new tokens of all sequences in a call are stacked into one [T, hidden] activation matrix, so
 * every projection is one sgemm over T rows whatever mix of prefill and decode the batch holds;
 * only attention looks at which sequence and position a row belongs to. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/llm_internal.h"

static smelt_err *engine_new(const smelt_model *m, bool blocks_only, int first, int last, llm_engine **out)
{
    *out = NULL;
    if (m->kind != SMELT_KIND_LLM) return SMELT_ERR(SMELT_E_INVALID, "not a language model (a %s graph): the language-model engine needs one", m->arch);
    if (blocks_only && !(first >= 0 && first <= last && last < m->llm.n_layers))
        return SMELT_ERR(SMELT_E_INVALID, "blocks %d to %d: expected 0 <= first <= last < %d layers", first, last, m->llm.n_layers);
    llm_engine *e = calloc(1, sizeof *e);
    if (!e) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    e->m = m;
    e->c = m->llm;
    e->gpt2 = strcmp(m->llm.pos, "learned") == 0;
    e->stop_after_layer = -1;
    e->stop_kind = LLM_IN_COUNT;
    e->blocks_only = blocks_only;
    e->first = first;
    e->last = last;
    /* the engine splits every product over its own thread pool (see llm_linear_apply) */
    openblas_set_num_threads(1);
    smelt_err *err = llm_bind_weights(e);
    if (err) {
        llm_engine_free(e);
        return err;
    }
    *out = e;
    return NULL;
}

smelt_err *llm_engine_new(const smelt_model *m, llm_engine **out) { return engine_new(m, false, 0, 0, out); }

smelt_err *llm_engine_new_blocks(const smelt_model *m, int first, int last, llm_engine **out) { return engine_new(m, true, first, last, out); }

smelt_err *llm_engine_new_graph(const smelt_model *m, int vocab_size, int max_pos, llm_engine **out)
{
    *out = NULL;
    if (m->kind != SMELT_KIND_GRAPH) return SMELT_ERR(SMELT_E_INVALID, "not an ONNX graph");
    llm_engine *e = calloc(1, sizeof *e);
    if (!e) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    e->m = m;
    e->c.vocab_size = vocab_size;
    smelt_err *err = llm_graph_engine_init(e, max_pos);
    if (err) {
        llm_engine_free(e);
        return err;
    }
    *out = e;
    return NULL;
}

static void free_scratch(llm_engine *e)
{
    free(e->x), free(e->xn), free(e->q), free(e->k), free(e->v), free(e->att), free(e->h1), free(e->h2);
    e->x = e->xn = e->q = e->k = e->v = e->att = e->h1 = e->h2 = NULL;
    e->cap_tokens = 0;
}

void llm_engine_free(llm_engine *e)
{
    if (!e) return;
    llm_graph_engine_fini(e);
    llm_free_packed(e);
    for (int i = 0; e->owned && i < e->n_owned; i++) free(e->owned[i]);
    free(e->owned);
    free(e->layers);
    free(e->rope_inv_freq);
    free_scratch(e);
    free(e);
}

const smelt_llm_config *llm_engine_config(const llm_engine *e) { return &e->c; }

void llm_engine_set_capture(llm_engine *e, llm_capture_fn fn, void *ctx, int stop_after_layer)
{
    e->capture = fn;
    e->capture_ctx = ctx;
    e->stop_after_layer = fn ? stop_after_layer : -1;
}

void llm_engine_set_capture_stop(llm_engine *e, llm_input_kind kind) { e->stop_kind = kind; }

smelt_err *llm_engine_set_start(llm_engine *e, llm_input_kind kind)
{
    if ((int)kind < 0 || kind >= LLM_IN_COUNT) return SMELT_ERR(SMELT_E_INVALID, "no projection input kind %d to start a block at", (int)kind);
    if (kind != LLM_IN_QKV && !(e->blocks_only && e->first == e->last))
        return SMELT_ERR(SMELT_E_INVALID, "only an engine over one block (llm_engine_new_blocks with first == last) can start inside it");
    e->start = kind;
    return NULL;
}

/* hands a projection input to the capture callback; returns from block() when the pass stops there */
#define CAPTURE(e, l, kind, x, T, dim)                                            \
    do {                                                                          \
        if ((e)->capture) {                                                       \
            (e)->capture((e)->capture_ctx, l, kind, x, T, dim);                   \
            if ((l) == (e)->stop_after_layer && (int)(kind) == (e)->stop_kind) return; \
        }                                                                         \
    } while (0)
size_t llm_engine_weight_bytes(const llm_engine *e) { return e->weight_bytes; }
size_t llm_kv_bytes_per_token(const llm_engine *e)
{
    size_t per_layer = e->kv8 ? (size_t)e->c.n_kv_heads * (e->c.head_dim + sizeof(float)) : (size_t)e->c.n_kv_heads * e->c.head_dim * sizeof(float);
    return 2 * (size_t)e->c.n_layers * per_layer;
}

static int kv_dim(const llm_engine *e) { return e->c.n_kv_heads * e->c.head_dim; }

smelt_err *llm_seq_new(llm_engine *e, llm_seq **out)
{
    llm_seq *s = calloc(1, sizeof *s);
    if (s) {
        s->e = e;
        s->k = calloc((size_t)e->c.n_layers + 1, sizeof *s->k);
        s->v = calloc((size_t)e->c.n_layers + 1, sizeof *s->v);
        if (e->kv8) {
            s->k8 = calloc((size_t)e->c.n_layers + 1, sizeof *s->k8);
            s->v8 = calloc((size_t)e->c.n_layers + 1, sizeof *s->v8);
            s->ks = calloc((size_t)e->c.n_layers + 1, sizeof *s->ks);
            s->vs = calloc((size_t)e->c.n_layers + 1, sizeof *s->vs);
        }
    }
    if (!s || !s->k || !s->v || (e->kv8 && (!s->k8 || !s->v8 || !s->ks || !s->vs))) {
        llm_seq_free(s);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    *out = s;
    return NULL;
}

void llm_seq_free(llm_seq *s)
{
    if (!s) return;
    for (int l = 0; s->k && l < s->e->c.n_layers; l++) free(s->k[l]);
    for (int l = 0; s->v && l < s->e->c.n_layers; l++) free(s->v[l]);
    for (int l = 0; l < s->e->c.n_layers; l++) {
        if (s->k8) free(s->k8[l]);
        if (s->v8) free(s->v8[l]);
        if (s->ks) free(s->ks[l]);
        if (s->vs) free(s->vs[l]);
    }
    free(s->k);
    free(s->v);
    free(s->k8), free(s->v8), free(s->ks), free(s->vs);
    free(s->tokens);
    free(s);
}

int llm_seq_len(const llm_seq *s) { return s->len; }

void llm_seq_truncate(llm_seq *s, int len)
{
    if (len >= 0 && len < s->len) s->len = len;
}

/* Grows the cache to hold `need` tokens (doubling, up to the context). */
static smelt_err *seq_reserve(llm_seq *s, int need)
{
    if (need <= s->cap) return NULL;
    int cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    if (cap > s->e->c.max_pos) cap = s->e->c.max_pos;
    if (s->e->graph) {
        int32_t *t = realloc(s->tokens, (size_t)cap * sizeof *t);
        if (!t) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        s->tokens = t;
        s->cap = cap;
        return NULL;
    }
    if (s->e->kv8) {
        size_t qb = (size_t)cap * (size_t)kv_dim(s->e), sb = (size_t)cap * (size_t)s->e->c.n_kv_heads * sizeof(float);
        for (int l = 0; l < s->e->c.n_layers; l++) {
            void *p[4] = {realloc(s->k8[l], qb), NULL, NULL, NULL};
            if (p[0]) s->k8[l] = p[0];
            if (p[0] && (p[1] = realloc(s->v8[l], qb))) s->v8[l] = p[1];
            if (p[1] && (p[2] = realloc(s->ks[l], sb))) s->ks[l] = p[2];
            if (p[2] && (p[3] = realloc(s->vs[l], sb))) s->vs[l] = p[3];
            if (!p[3]) return SMELT_ERR(SMELT_E_NOMEM, "out of memory growing the KV cache to %d tokens", cap);
        }
        s->cap = cap;
        return NULL;
    }
    size_t bytes = (size_t)cap * (size_t)kv_dim(s->e) * sizeof(float);
    for (int l = 0; l < s->e->c.n_layers; l++) {
        float *k = realloc(s->k[l], bytes);
        if (k) s->k[l] = k;
        float *v = k ? realloc(s->v[l], bytes) : NULL;
        if (v) s->v[l] = v;
        if (!k || !v) return SMELT_ERR(SMELT_E_NOMEM, "out of memory growing the KV cache to %d tokens", cap);
    }
    s->cap = cap;
    return NULL;
}

static smelt_err *reserve_scratch(llm_engine *e, int T)
{
    if (T <= e->cap_tokens) return NULL;
    free_scratch(e);
    const smelt_llm_config *c = &e->c;
    size_t H = (size_t)c->hidden, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)kv_dim(e);
    size_t wide = (size_t)c->ffn > 3 * H ? (size_t)c->ffn : 3 * H;
    e->x = malloc(T * H * sizeof(float));
    e->xn = malloc(T * (H > qd ? H : qd) * sizeof(float));
    e->q = malloc(T * qd * sizeof(float));
    e->k = malloc(T * kvd * sizeof(float));
    e->v = malloc(T * kvd * sizeof(float));
    e->att = malloc(T * qd * sizeof(float));
    e->h1 = malloc(T * wide * sizeof(float));
    e->h2 = malloc(T * wide * sizeof(float));
    if (!e->x || !e->xn || !e->q || !e->k || !e->v || !e->att || !e->h1 || !e->h2) {
        free_scratch(e);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory for a batch of %d tokens", T);
    }
    e->cap_tokens = T;
    return NULL;
}

static smelt_err *check_batch(const llm_engine *e, const llm_batch_item *items, int n_items, int *T_out, int *rows_out)
{
    int T = 0, rows = 0;
    for (int i = 0; i < n_items; i++) {
        const llm_batch_item *it = &items[i];
        if (it->seq->e != e) return SMELT_ERR(SMELT_E_INVALID, "batch item %d: the sequence belongs to another engine", i);
        if (it->n_tokens < 1) return SMELT_ERR(SMELT_E_INVALID, "batch item %d: no tokens", i);
        for (int k = 0; k < i; k++)
            if (items[k].seq == it->seq) return SMELT_ERR(SMELT_E_INVALID, "batch items %d and %d are the same sequence", k, i);
        if (it->n_tokens > e->c.max_pos - it->seq->len)
            return SMELT_ERR(SMELT_E_INVALID, "%d tokens after %d cached ones exceed the model's context of %d tokens", it->n_tokens, it->seq->len,
                             e->c.max_pos);
        for (int k = 0; k < it->n_tokens; k++)
            if (it->tokens[k] < 0 || it->tokens[k] >= e->c.vocab_size)
                return SMELT_ERR(SMELT_E_INVALID, "token id %d is outside the vocabulary (0 to %d)", it->tokens[k], e->c.vocab_size - 1);
        if (T > 1 << 24) return SMELT_ERR(SMELT_E_INVALID, "batch of more than %d tokens", 1 << 24);
        T += it->n_tokens;
        rows += it->all_logits ? it->n_tokens : 1;
    }
    *T_out = T;
    *rows_out = rows;
    return NULL;
}

static void add_into(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static void norm(const llm_engine *e, const llm_norm *n, float *out, const float *x, int T)
{
    if (e->gpt2) llm_layernorm(out, x, n->w, n->b, T, e->c.hidden, (float)e->c.norm_eps);
    else llm_rmsnorm(out, x, n->w, T, e->c.hidden, (float)e->c.norm_eps);
}

/* One decoder block on the T stacked rows of e->x. */
static void block(llm_engine *e, int l, int T, llm_seq *const *seqs, const int *pos, const llm_attn_seg *segs, int n_segs)
{
    const smelt_llm_config *c = &e->c;
    const llm_layer *L = &e->layers[l];
    int H = c->hidden, qd = c->n_heads * c->head_dim, kvd = kv_dim(e);
    /* a pass that starts inside the block (llm_engine_set_start): e->x and the projection's input
     * already hold what the skipped part computed */
    if (e->start == LLM_IN_O) goto o_proj;
    if (e->start == LLM_IN_MLP) goto mlp;
    if (e->start == LLM_IN_DOWN) goto down;
    norm(e, &L->ln1, e->xn, e->x, T);
    CAPTURE(e, l, LLM_IN_QKV, e->xn, T, H);
    if (e->gpt2) {
        llm_linear_apply(&L->qkv, e->xn, T, e->h1); /* [T, 3H]: q | k | v */
        for (int t = 0; t < T; t++) {
            const float *r = e->h1 + (size_t)t * 3 * H;
            memcpy(e->q + (size_t)t * qd, r, (size_t)H * sizeof(float));
            memcpy(e->k + (size_t)t * kvd, r + H, (size_t)H * sizeof(float));
            memcpy(e->v + (size_t)t * kvd, r + 2 * H, (size_t)H * sizeof(float));
        }
    } else {
        llm_linear_apply(&L->q, e->xn, T, e->q);
        llm_linear_apply(&L->k, e->xn, T, e->k);
        llm_linear_apply(&L->v, e->xn, T, e->v);
        llm_rope(e->q, T, c->n_heads, c->head_dim, pos, e->rope_inv_freq);
        llm_rope(e->k, T, c->n_kv_heads, c->head_dim, pos, e->rope_inv_freq);
    }
    if (e->kv8) {
        int nkv = c->n_kv_heads;
        for (int t = 0; t < T; t++) {
            llm_seq *s = seqs[t];
            llm_kv8_quantize(e->k + (size_t)t * kvd, nkv, c->head_dim, s->k8[l] + (size_t)pos[t] * kvd, s->ks[l] + (size_t)pos[t] * nkv);
            llm_kv8_quantize(e->v + (size_t)t * kvd, nkv, c->head_dim, s->v8[l] + (size_t)pos[t] * kvd, s->vs[l] + (size_t)pos[t] * nkv);
        }
    } else {
        for (int t = 0; t < T; t++) {
            memcpy(seqs[t]->k[l] + (size_t)pos[t] * kvd, e->k + (size_t)t * kvd, (size_t)kvd * sizeof(float));
            memcpy(seqs[t]->v[l] + (size_t)pos[t] * kvd, e->v + (size_t)t * kvd, (size_t)kvd * sizeof(float));
        }
    }
    llm_attn_args a = {c->n_heads, c->n_kv_heads, c->head_dim, l, e->q, e->att, seqs, pos, segs, n_segs};
    llm_attention(&a, T);
o_proj:
    CAPTURE(e, l, LLM_IN_O, e->att, T, qd);
    llm_linear_apply(&L->o, e->att, T, e->xn);
    add_into(e->x, e->xn, (size_t)T * H);

mlp:
    norm(e, &L->ln2, e->xn, e->x, T);
    CAPTURE(e, l, LLM_IN_MLP, e->xn, T, H);
    if (e->gpt2) {
        llm_linear_apply(&L->fc, e->xn, T, e->h1);
        llm_gelu_tanh(e->h1, (size_t)T * c->ffn);
    } else {
        llm_linear_apply(&L->gate, e->xn, T, e->h1);
        llm_linear_apply(&L->up, e->xn, T, e->h2);
        llm_swiglu(e->h1, e->h2, (size_t)T * c->ffn);
    }
down:
    CAPTURE(e, l, LLM_IN_DOWN, e->h1, T, c->ffn);
    llm_linear_apply(e->gpt2 ? &L->proj : &L->down, e->h1, T, e->xn);
    add_into(e->x, e->xn, (size_t)T * H);
}

/* What a forward pass needs beyond the scratch: each stacked row's sequence and position, and
 * each item's attention segment. */
typedef struct {
    int T, rows;
    llm_seq **seqs;
    int *pos;
    llm_attn_seg *segs;
} fwd_plan;

static void plan_free(fwd_plan *p)
{
    free(p->seqs);
    free(p->pos);
    free(p->segs);
}

/* Checks the batch, grows the scratch and the caches, and stacks the rows. */
static smelt_err *plan_batch(llm_engine *e, const llm_batch_item *items, int n_items, fwd_plan *p)
{
    *p = (fwd_plan){0};
    SMELT_TRY(check_batch(e, items, n_items, &p->T, &p->rows));
    if (p->T == 0) return NULL;
    SMELT_TRY(reserve_scratch(e, p->T));
    for (int i = 0; i < n_items; i++) SMELT_TRY(seq_reserve(items[i].seq, items[i].seq->len + items[i].n_tokens));
    p->seqs = malloc((size_t)p->T * sizeof *p->seqs);
    p->pos = malloc((size_t)p->T * sizeof *p->pos);
    p->segs = malloc((size_t)n_items * sizeof *p->segs);
    if (!p->seqs || !p->pos || !p->segs) {
        plan_free(p);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    int t = 0;
    for (int i = 0; i < n_items; i++) {
        p->segs[i] = (llm_attn_seg){items[i].seq, t, items[i].n_tokens, items[i].seq->len};
        for (int k = 0; k < items[i].n_tokens; k++, t++) {
            p->seqs[t] = items[i].seq;
            p->pos[t] = items[i].seq->len + k;
        }
    }
    return NULL;
}

/* e->x = the rows' token embeddings (plus learned positions) */
static void embed(llm_engine *e, const llm_batch_item *items, int n_items, const fwd_plan *p)
{
    size_t H = (size_t)e->c.hidden;
    int t = 0;
    for (int i = 0; i < n_items; i++)
        for (int k = 0; k < items[i].n_tokens; k++, t++) {
            memcpy(e->x + t * H, e->tok_emb + (size_t)items[i].tokens[k] * H, H * sizeof(float));
            if (e->pos_emb) add_into(e->x + t * H, e->pos_emb + (size_t)p->pos[t] * H, H);
        }
}

static void advance(const llm_batch_item *items, int n_items)
{
    for (int i = 0; i < n_items; i++) items[i].seq->len += items[i].n_tokens;
}

smelt_err *llm_forward_blocks(llm_engine *e, const llm_batch_item *items, int n_items, const float *x_in, float *x_out)
{
    return llm_forward_blocks_from(e, items, n_items, x_in, NULL, x_out);
}

smelt_err *llm_forward_blocks_from(llm_engine *e, const llm_batch_item *items, int n_items, const float *x_in, const float *proj_in, float *x_out)
{
    if (!e->blocks_only) return SMELT_ERR(SMELT_E_INVALID, "llm_forward_blocks needs an engine made by llm_engine_new_blocks");
    if (!x_in && (e->first != 0 || e->start != LLM_IN_QKV))
        return SMELT_ERR(SMELT_E_INVALID, "no hidden states for block %d: only block 0's whole pass starts from the embeddings", e->first);
    bool wants_proj = e->start == LLM_IN_O || e->start == LLM_IN_DOWN;
    if (wants_proj != (proj_in != NULL))
        return SMELT_ERR(SMELT_E_INVALID, "a pass that starts at the %s projection's input %s", e->start == LLM_IN_O ? "o" : e->start == LLM_IN_DOWN ? "down" : "block's first",
                         wants_proj ? "needs that input (proj_in)" : "takes no proj_in");
    fwd_plan p;
    SMELT_TRY(plan_batch(e, items, n_items, &p));
    if (p.T == 0) return NULL;
    size_t bytes = (size_t)p.T * e->c.hidden * sizeof(float);
    if (x_in) memcpy(e->x, x_in, bytes);
    else embed(e, items, n_items, &p);
    if (e->start == LLM_IN_O) memcpy(e->att, proj_in, (size_t)p.T * e->c.n_heads * e->c.head_dim * sizeof(float));
    if (e->start == LLM_IN_DOWN) memcpy(e->h1, proj_in, (size_t)p.T * e->c.ffn * sizeof(float));
    int last = e->stop_after_layer >= e->first && e->stop_after_layer < e->last ? e->stop_after_layer : e->last;
    for (int l = e->first; l <= last; l++) block(e, l, p.T, p.seqs, p.pos, p.segs, n_items);
    if (x_out) memcpy(x_out, e->x, bytes);
    advance(items, n_items);
    plan_free(&p);
    return NULL;
}

smelt_err *llm_forward(llm_engine *e, const llm_batch_item *items, int n_items, float *logits)
{
    if (e->blocks_only) return SMELT_ERR(SMELT_E_INVALID, "an engine over blocks %d to %d has no head: use llm_forward_blocks", e->first, e->last);
    if (e->graph) {
        int T = 0, rows = 0;
        SMELT_TRY(check_batch(e, items, n_items, &T, &rows));
        if (T == 0) return NULL;
        for (int i = 0; i < n_items; i++) SMELT_TRY(seq_reserve(items[i].seq, items[i].seq->len + items[i].n_tokens));
        return llm_graph_forward(e, items, n_items, logits);
    }
    fwd_plan p;
    SMELT_TRY(plan_batch(e, items, n_items, &p));
    if (p.T == 0) return NULL;
    const smelt_llm_config *c = &e->c;
    size_t H = (size_t)c->hidden;
    embed(e, items, n_items, &p);
    int last = e->stop_after_layer >= 0 && e->stop_after_layer < c->n_layers ? e->stop_after_layer : c->n_layers - 1;
    for (int l = 0; l <= last; l++) block(e, l, p.T, p.seqs, p.pos, p.segs, n_items);
    if (last < c->n_layers - 1 || !logits) { /* a calibration pass: the blocks asked for, no logits */
        advance(items, n_items);
        plan_free(&p);
        return NULL;
    }

    /* only the rows whose logits were asked for go through the final norm and the head */
    int r = 0, t = 0;
    for (int i = 0; i < n_items; i++) {
        int n = items[i].n_tokens, first = items[i].all_logits ? 0 : n - 1;
        memmove(e->x + (size_t)r * H, e->x + (size_t)(t + first) * H, (size_t)(n - first) * H * sizeof(float));
        r += n - first;
        t += n;
    }
    advance(items, n_items);
    norm(e, &e->final_norm, e->xn, e->x, p.rows);
    llm_linear_apply(&e->head, e->xn, p.rows, logits);
    plan_free(&p);
    return NULL;
}
