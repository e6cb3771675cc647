/* Block-by-block engines (llm_engine_new_blocks / llm_forward_blocks), which quantizers use to run
 * calibration one block at a time from stored hidden states. What GPTQ and AWQ rely on, asserted
 * on the tiny-llama fixture with a ragged batch:
 * - the projection inputs a chain of block engines captures are the very inputs the full engine
 *   captures at the same block (bit-exact: same rows, same kernels);
 * - a pass that stops after one input kind captures that input unchanged;
 * - chaining engines over blocks 0..2 and 3..L-1 gives the same hidden states as one engine over
 *   every block;
 * - a pass stopped at the gate/up input hands back the stream after the attention half; passes
 *   started inside the block (at o_proj's input with the attention output kept, at the MLP half
 *   from that stream, at down's input kept) capture what the whole block captures and end at its
 *   output, bit for bit (GPTQ's later passes skip what earlier ones computed that way);
 * - misuse is refused with a message: llm_forward on a block engine, a block range outside the
 *   model, hidden states missing for a block other than 0 or for a start inside a block, a start
 *   inside a block asked of an engine over two blocks, a projection input missing or needless. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/hf_model.h"
#include "runtime/llm.h"

#define DIR "models/tiny-llama"
enum { N_SEQ = 2 };
static const int seq_len[N_SEQ] = {19, 7}; /* different lengths: the attention segments differ */

typedef struct {
    int layer;
    llm_input_kind kind;
    float *x; /* the captured [T, dim] */
    size_t n;
    int calls;
} grab;

static void grab_fn(void *ctx, int layer, llm_input_kind kind, const float *x, int T, int dim)
{
    grab *g = ctx;
    if (layer != g->layer || kind != g->kind) return;
    g->n = (size_t)T * dim;
    g->x = realloc(g->x, g->n * sizeof(float));
    assert_non_null(g->x);
    memcpy(g->x, x, g->n * sizeof(float));
    g->calls++;
}

static smelt_model *load(void)
{
    smelt_model *m = NULL;
    smelt_err *err = hf_import(DIR, false, &m);
    if (err) fail_msg("%s", smelt_err_msg(err));
    return m;
}

/* the batch: two sequences of made-up tokens (any ids inside the vocabulary) */
static void make_items(llm_engine *e, llm_seq **seqs, int32_t *tok, llm_batch_item *items)
{
    int vocab = llm_engine_config(e)->vocab_size, off = 0;
    for (int i = 0; i < N_SEQ; i++) {
        assert_null(llm_seq_new(e, &seqs[i]));
        for (int k = 0; k < seq_len[i]; k++) tok[off + k] = (int32_t)((7919 * (off + k) + 13) % vocab);
        items[i] = (llm_batch_item){seqs[i], tok + off, seq_len[i], false};
        off += seq_len[i];
    }
}

static void free_seqs(llm_seq **seqs)
{
    for (int i = 0; i < N_SEQ; i++) llm_seq_free(seqs[i]);
}

/* The input `kind` of block `layer` as the full engine computes it. */
static grab full_capture(smelt_model *m, int layer, llm_input_kind kind)
{
    llm_engine *e = NULL;
    assert_null(llm_engine_new(m, &e));
    grab g = {layer, kind, NULL, 0, 0};
    llm_engine_set_capture(e, grab_fn, &g, layer);
    llm_seq *seqs[N_SEQ];
    int32_t tok[64];
    llm_batch_item items[N_SEQ];
    make_items(e, seqs, tok, items);
    assert_null(llm_forward(e, items, N_SEQ, NULL));
    free_seqs(seqs);
    llm_engine_free(e);
    assert_int_equal(g.calls, 1);
    return g;
}

/* Runs blocks first..last as one engine: x in (NULL: embeddings) -> x out, capturing `g`. */
static void run_blocks(smelt_model *m, int first, int last, const float *x_in, float *x_out, grab *g, bool stop)
{
    llm_engine *e = NULL;
    smelt_err *err = llm_engine_new_blocks(m, first, last, &e);
    if (err) fail_msg("%s", smelt_err_msg(err));
    if (g) {
        llm_engine_set_capture(e, grab_fn, g, g->layer);
        if (stop) llm_engine_set_capture_stop(e, g->kind);
    }
    llm_seq *seqs[N_SEQ];
    int32_t tok[64];
    llm_batch_item items[N_SEQ];
    make_items(e, seqs, tok, items);
    err = llm_forward_blocks(e, items, N_SEQ, x_in, x_out);
    if (err) fail_msg("%s", smelt_err_msg(err));
    for (int i = 0; i < N_SEQ; i++) assert_int_equal(llm_seq_len(seqs[i]), seq_len[i]);
    free_seqs(seqs);
    llm_engine_free(e);
}

static void chained_blocks_capture_what_the_full_pass_does(void **state)
{
    (void)state;
    smelt_model *m = load();
    int L = m->llm.n_layers, H = m->llm.hidden, T = seq_len[0] + seq_len[1];
    assert_true(L >= 2);
    float *x = malloc((size_t)T * H * sizeof(float));
    assert_non_null(x);
    for (int l = 0; l < L; l++) {
        for (int kind = 0; kind < LLM_IN_COUNT; kind++) {
            grab want = full_capture(m, l, (llm_input_kind)kind);
            for (int stop = 0; stop < 2; stop++) {
                grab got = {l, (llm_input_kind)kind, NULL, 0, 0};
                run_blocks(m, l, l, l == 0 ? NULL : x, NULL, &got, stop);
                assert_int_equal(got.calls, 1);
                assert_int_equal(got.n, want.n);
                assert_memory_equal(got.x, want.x, want.n * sizeof(float));
                free(got.x);
            }
            free(want.x);
        }
        run_blocks(m, l, l, l == 0 ? NULL : x, x, NULL, false); /* block l's output: block l+1's input */
    }
    /* one engine over every block ends where the chain of one-block engines ended */
    float *y = malloc((size_t)T * H * sizeof(float));
    float *z = malloc((size_t)T * H * sizeof(float));
    assert_non_null(y);
    assert_non_null(z);
    run_blocks(m, 0, L - 1, NULL, y, NULL, false);
    assert_memory_equal(x, y, (size_t)T * H * sizeof(float));
    run_blocks(m, 0, 0, NULL, z, NULL, false);
    run_blocks(m, 1, L - 1, z, z, NULL, false); /* in place */
    assert_memory_equal(x, z, (size_t)T * H * sizeof(float));
    free(x), free(y), free(z);
    smelt_model_free(m);
}

/* Runs block `layer` from inside it (llm_engine_set_start): x_in and proj_in as llm.h says. */
static void run_from(smelt_model *m, int layer, llm_input_kind start, const float *x_in, const float *proj_in, float *x_out, grab *g)
{
    llm_engine *e = NULL;
    smelt_err *err = llm_engine_new_blocks(m, layer, layer, &e);
    if (!err) err = llm_engine_set_start(e, start);
    if (err) fail_msg("%s", smelt_err_msg(err));
    if (g) llm_engine_set_capture(e, grab_fn, g, g->layer);
    llm_seq *seqs[N_SEQ];
    int32_t tok[64];
    llm_batch_item items[N_SEQ];
    make_items(e, seqs, tok, items);
    err = llm_forward_blocks_from(e, items, N_SEQ, x_in, proj_in, x_out);
    if (err) fail_msg("%s", smelt_err_msg(err));
    free_seqs(seqs);
    llm_engine_free(e);
}

/* What the whole block captures of `kind` and outputs equals what a pass started at `start`
 * captures and outputs, bit for bit. */
static void assert_same_from(smelt_model *m, int layer, llm_input_kind start, const float *x_in, const float *proj_in, llm_input_kind kind,
                             const grab *want, const float *full, size_t bytes)
{
    float *out = full ? malloc(bytes) : NULL;
    assert_true(!full || out);
    grab got = {layer, kind, NULL, 0, 0};
    run_from(m, layer, start, x_in, proj_in, out, &got);
    assert_int_equal(got.calls, 1);
    assert_int_equal(got.n, want->n);
    assert_memory_equal(got.x, want->x, want->n * sizeof(float));
    if (full) assert_memory_equal(out, full, bytes);
    free(got.x), free(out);
}

static void passes_started_inside_the_block_continue_where_a_stop_left_off(void **state)
{
    (void)state;
    smelt_model *m = load();
    int L = m->llm.n_layers, H = m->llm.hidden, T = seq_len[0] + seq_len[1];
    size_t bytes = (size_t)T * H * sizeof(float);
    float *x = malloc(bytes), *mid = malloc(bytes), *full = malloc(bytes), *at_qkv = malloc(bytes), *at_o = malloc(bytes);
    assert_non_null(x), assert_non_null(mid), assert_non_null(full), assert_non_null(at_qkv), assert_non_null(at_o);
    for (int l = 0; l < L; l++) {
        const float *in = l == 0 ? NULL : x;
        /* stopped at q/k/v's or o_proj's input the stream is still the block's input (block 0's:
         * the embeddings, from which a pass starting inside block 0 goes on) */
        grab gq = {l, LLM_IN_QKV, NULL, 0, 0};
        run_blocks(m, l, l, in, at_qkv, &gq, true);
        if (in) assert_memory_equal(at_qkv, in, bytes);
        free(gq.x);
        grab go = {l, LLM_IN_O, NULL, 0, 0};
        run_blocks(m, l, l, in, at_o, &go, true);
        assert_memory_equal(at_o, at_qkv, bytes);
        grab gm = {l, LLM_IN_MLP, NULL, 0, 0};
        run_blocks(m, l, l, in, mid, &gm, true);
        grab gd = {l, LLM_IN_DOWN, NULL, 0, 0};
        run_blocks(m, l, l, in, full, &gd, false);
        /* from o_proj's input (the attention output) and the block's input */
        assert_same_from(m, l, LLM_IN_O, at_qkv, go.x, LLM_IN_MLP, &gm, NULL, 0);
        assert_same_from(m, l, LLM_IN_O, at_qkv, go.x, LLM_IN_DOWN, &gd, full, bytes);
        /* from the stream after the attention half */
        assert_same_from(m, l, LLM_IN_MLP, mid, NULL, LLM_IN_DOWN, &gd, full, bytes);
        /* from down's input and that stream */
        assert_same_from(m, l, LLM_IN_DOWN, mid, gd.x, LLM_IN_DOWN, &gd, full, bytes);
        free(go.x), free(gm.x), free(gd.x);
        memcpy(x, full, bytes);
    }
    free(x), free(mid), free(full), free(at_qkv), free(at_o);
    smelt_model_free(m);
}

/* err is an error whose message contains text; frees it */
static void assert_err_contains(smelt_err *err, const char *text)
{
    assert_non_null(err);
    if (!strstr(smelt_err_msg(err), text)) fail_msg("'%s' lacks '%s'", smelt_err_msg(err), text);
    smelt_err_free(err);
}

static void misuse_is_refused(void **state)
{
    (void)state;
    smelt_model *m = load();
    int L = m->llm.n_layers;
    llm_engine *e = NULL;
    assert_err_contains(llm_engine_new_blocks(m, 2, 1, &e), "blocks 2 to 1");
    smelt_err *err = llm_engine_new_blocks(m, 0, L, &e);
    assert_non_null(err);
    assert_null(e);
    smelt_err_free(err);

    assert_null(llm_engine_new_blocks(m, 1, 1, &e));
    llm_seq *seqs[N_SEQ];
    int32_t tok[64];
    llm_batch_item items[N_SEQ];
    make_items(e, seqs, tok, items);
    assert_err_contains(llm_forward(e, items, N_SEQ, NULL), "no head");
    assert_err_contains(llm_forward_blocks(e, items, N_SEQ, NULL, NULL), "only block 0's whole pass starts from the embeddings");
    for (int i = 0; i < N_SEQ; i++) assert_int_equal(llm_seq_len(seqs[i]), 0); /* nothing ran */
    free_seqs(seqs);
    llm_engine_free(e);

    /* starting inside a block: one block only, from hidden states, with the projection's input
     * exactly when the start needs one */
    assert_null(llm_engine_new_blocks(m, 0, 1, &e));
    assert_err_contains(llm_engine_set_start(e, LLM_IN_MLP), "only an engine over one block");
    assert_null(llm_engine_set_start(e, LLM_IN_QKV)); /* the whole block: allowed on any engine */
    assert_err_contains(llm_engine_set_start(e, LLM_IN_COUNT), "no projection input kind 4");
    llm_engine_free(e);
    assert_null(llm_engine_new_blocks(m, 0, 0, &e));
    assert_null(llm_engine_set_start(e, LLM_IN_MLP));
    make_items(e, seqs, tok, items);
    assert_err_contains(llm_forward_blocks(e, items, N_SEQ, NULL, NULL), "no hidden states for block 0");
    int T = seq_len[0] + seq_len[1];
    float *buf = calloc((size_t)T * (m->llm.ffn > m->llm.hidden ? m->llm.ffn : m->llm.hidden), sizeof(float));
    assert_non_null(buf);
    assert_err_contains(llm_forward_blocks_from(e, items, N_SEQ, buf, buf, NULL), "takes no proj_in");
    assert_null(llm_engine_set_start(e, LLM_IN_DOWN));
    assert_err_contains(llm_forward_blocks(e, items, N_SEQ, buf, NULL), "starts at the down projection's input needs that input");
    for (int i = 0; i < N_SEQ; i++) assert_int_equal(llm_seq_len(seqs[i]), 0); /* nothing ran */
    free(buf);
    free_seqs(seqs);
    llm_engine_free(e);
    smelt_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chained_blocks_capture_what_the_full_pass_does),
        cmocka_unit_test(passes_started_inside_the_block_continue_where_a_stop_left_off),
        cmocka_unit_test(misuse_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
