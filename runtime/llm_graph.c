/* ONNX decoders behind the language-model engine's interface: each sequence keeps its tokens, and
 * a forward pass runs the graph on every sequence's whole history (input_ids [batch, seq] ->
 * logits [batch, seq, vocab]), stacking sequences of equal length into one batch. Quadratic in the
 * length, but it lets `smelt run`, `smelt perplexity` and the evals treat an exported .onnx like any
 * other model, and it is how the graph executor's results are compared with the engine's. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "runtime/graph/graph_exec.h"
#include "runtime/llm_internal.h"

static const smelt_value *find_value(const smelt_value *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) return &v[i];
    return NULL;
}

smelt_err *llm_graph_engine_init(llm_engine *e, int max_pos)
{
    const smelt_model *m = e->m;
    const smelt_value *in = find_value(m->inputs, m->n_inputs, "input_ids"), *out = find_value(m->outputs, m->n_outputs, "logits");
    if (!in || !out || m->n_inputs != 1)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "not a decoder graph: expected one input 'input_ids' [batch, seq] and an output 'logits' [batch, seq, vocab]");
    if (in->ndim != 2 || in->dtype != SMELT_DT_I64 || out->ndim != 3)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "decoder graph: 'input_ids' must be i64 [batch, seq] and 'logits' [batch, seq, vocab]");
    if (out->dims[2] > 0) e->c.vocab_size = (int)out->dims[2];
    if (e->c.vocab_size <= 0) return SMELT_ERR(SMELT_E_INVALID, "decoder graph: the vocabulary size is neither in 'logits' nor given");
    e->c.max_pos = max_pos;
    snprintf(e->c.act, sizeof e->c.act, "graph");
    return smelt_graph_load(m, &e->graph);
}

void llm_graph_engine_fini(llm_engine *e)
{
    smelt_graph_free(e->graph);
    e->graph = NULL;
}

/* Runs items[first..first+n) (all of total length L) as one batch. */
static smelt_err *run_group(llm_engine *e, const llm_batch_item *items, const int *idx, int n, int L, float *const *dst)
{
    int64_t *ids = malloc((size_t)n * L * sizeof *ids);
    if (!ids) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int b = 0; b < n; b++) {
        const llm_batch_item *it = &items[idx[b]];
        for (int t = 0; t < it->seq->len; t++) ids[(size_t)b * L + t] = it->seq->tokens[t];
        for (int t = 0; t < it->n_tokens; t++) ids[(size_t)b * L + it->seq->len + t] = it->tokens[t];
    }
    smelt_tensor in = {.name = "input_ids", .dtype = SMELT_DT_I64, .ndim = 2, .shape = {n, L}, .data = ids, .nbytes = (size_t)n * L * sizeof *ids};
    smelt_tensor *outs = NULL;
    int n_outs = 0;
    smelt_err *err = smelt_graph_run(e->graph, &in, 1, &outs, &n_outs);
    free(ids);
    if (err) return err;
    const smelt_tensor *lg = NULL;
    for (int i = 0; i < n_outs; i++)
        if (strcmp(outs[i].name, "logits") == 0) lg = &outs[i];
    int V = e->c.vocab_size;
    if (!lg || lg->dtype != SMELT_DT_F32 || lg->ndim != 3 || lg->shape[0] != n || lg->shape[1] != L || lg->shape[2] != V)
        err = SMELT_ERR(SMELT_E_INVALID, "decoder graph: 'logits' is not f32 [%d, %d, %d]", n, L, V);
    for (int b = 0; !err && b < n; b++) {
        const llm_batch_item *it = &items[idx[b]];
        int first = it->all_logits ? it->seq->len : L - 1;
        memcpy(dst[idx[b]], (const float *)lg->data + ((size_t)b * L + first) * V, (size_t)(L - first) * V * sizeof(float));
    }
    smelt_graph_outputs_free(outs, n_outs);
    return err;
}

smelt_err *llm_graph_forward(llm_engine *e, const llm_batch_item *items, int n_items, float *logits)
{
    /* where each item's logit rows go */
    float **dst = malloc((size_t)n_items * sizeof *dst);
    int *idx = malloc((size_t)n_items * sizeof *idx);
    bool *done = calloc((size_t)n_items, sizeof *done);
    smelt_err *err = dst && idx && done ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    size_t row = 0;
    for (int i = 0; !err && i < n_items; i++) {
        dst[i] = logits + row * e->c.vocab_size;
        row += items[i].all_logits ? (size_t)items[i].n_tokens : 1;
    }
    for (int i = 0; !err && i < n_items; i++) {
        if (done[i]) continue;
        int L = items[i].seq->len + items[i].n_tokens, n = 0;
        for (int k = i; k < n_items; k++)
            if (!done[k] && items[k].seq->len + items[k].n_tokens == L) idx[n++] = k, done[k] = true;
        err = run_group(e, items, idx, n, L, dst);
    }
    /* only now, all having run, do the sequences take their new tokens */
    for (int i = 0; !err && i < n_items; i++) {
        llm_seq *s = items[i].seq;
        memcpy(s->tokens + s->len, items[i].tokens, (size_t)items[i].n_tokens * sizeof(int32_t));
        s->len += items[i].n_tokens;
    }
    free(dst);
    free(idx);
    free(done);
    return err;
}
