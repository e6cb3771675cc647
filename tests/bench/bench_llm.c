/* The language-model engine's speed against what the machine allows, measured side by side in one
 * run (min and median of several runs):
 *   - prefill of the teacher at 256 and 1024 tokens: tokens/s and GFLOP/s (2 * matmul params *
 *     tokens + causal attention flops), next to OpenBLAS sgemm alone on the same projection shapes
 *     (M = tokens); the ratio is the engine's overhead around the matrix products (goal >= 0.7);
 *   - decode of the teacher at batch 1, 4 and 16 (short prompts, then one llm_forward a step);
 *   - decode at batch 1 of a large random-weight f32 Llama (smelt synth) against the memory-bandwidth
 *     roofline: this run's read bandwidth (threaded sum over a buffer far larger than the caches, on
 *     core/threads.h's pool, best of several) / bytes of weights read a token (goal >= 0.8).
 * Usage: bench_llm TEACHER_DIR BIG_MODEL_DIR RUNS */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/threads.h"
#include "formats/hf_model.h"
#include "runtime/llm.h"

#include "tests/bench/bench_util.h"

/* ---- prefill vs sgemm ---- */

typedef struct {
    int out, in;
} shape;

/* The projection shapes of one Llama layer (q, k, v, o, gate, up, down). */
static int layer_shapes(const smelt_llm_config *c, shape *s)
{
    int H = c->hidden, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    shape v[] = {{qd, H}, {kvd, H}, {kvd, H}, {H, qd}, {c->ffn, H}, {c->ffn, H}, {H, c->ffn}};
    memcpy(s, v, sizeof v);
    return 7;
}

static double matmul_params(const smelt_llm_config *c)
{
    shape s[8];
    int n = layer_shapes(c, s);
    double p = 0;
    for (int i = 0; i < n; i++) p += (double)s[i].out * s[i].in;
    return p * c->n_layers;
}

/* The flops of a T-token prefill that asks for the last token's logits: projections, the head on
 * one row, and causal attention (QK^T and PV over positions 0..t for every t). */
static double prefill_flops(const smelt_llm_config *c, int T)
{
    double attn = 4.0 * c->head_dim * c->n_heads * c->n_layers * ((double)T * (T + 1) / 2);
    return 2 * matmul_params(c) * T + 2.0 * c->vocab_size * c->hidden + attn;
}

/* Every layer's projections as plain sgemm calls, y[T, out] = x[T, in] w[out, in]^T (the engine's
 * layout), on per-layer weight buffers of the model's shapes. */
typedef struct {
    int n_layers, n_shapes;
    shape s[8];
    float **w; /* [n_layers * n_shapes] */
    float *x, *y;
} gemm_set;

static void gemm_set_init(gemm_set *g, const smelt_llm_config *c, int T)
{
    g->n_layers = c->n_layers;
    g->n_shapes = layer_shapes(c, g->s);
    g->w = calloc((size_t)g->n_layers * g->n_shapes, sizeof *g->w);
    size_t widest = 0;
    for (int i = 0; i < g->n_shapes; i++) {
        widest = (size_t)g->s[i].in > widest ? (size_t)g->s[i].in : widest;
        widest = (size_t)g->s[i].out > widest ? (size_t)g->s[i].out : widest;
    }
    g->x = malloc((size_t)T * widest * sizeof(float));
    g->y = malloc((size_t)T * widest * sizeof(float));
    for (size_t i = 0; i < (size_t)T * widest; i++) g->x[i] = (float)(i % 97) * 0.01f;
    for (int k = 0; k < g->n_layers * g->n_shapes; k++) {
        size_t n = (size_t)g->s[k % g->n_shapes].out * g->s[k % g->n_shapes].in;
        g->w[k] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) g->w[k][i] = (float)(i % 89) * 0.001f;
    }
}

static void gemm_set_run(const gemm_set *g, int T)
{
    for (int k = 0; k < g->n_layers * g->n_shapes; k++) {
        const shape *s = &g->s[k % g->n_shapes];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, s->out, s->in, 1.0f, g->x, s->in, g->w[k], s->in, 0.0f, g->y, s->out);
    }
}

static void gemm_set_free(gemm_set *g)
{
    for (int k = 0; k < g->n_layers * g->n_shapes; k++) free(g->w[k]);
    free(g->w), free(g->x), free(g->y);
}

static void bench_prefill(llm_engine *e, int T, int runs)
{
    const smelt_llm_config *c = llm_engine_config(e);
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    int32_t *tok = malloc((size_t)T * sizeof *tok);
    tokens(tok, T, c->vocab_size, 0);
    gemm_set g;
    gemm_set_init(&g, c, T);
    double te[MAX_RUNS], tg[MAX_RUNS];
    for (int r = -1; r < runs; r++) { /* run -1 warms caches and grows scratch */
        llm_seq *s;
        die(llm_seq_new(e, &s));
        llm_batch_item it = {s, tok, T, false};
        double t0 = smelt_now();
        die(llm_forward(e, &it, 1, logits));
        double t1 = smelt_now();
        gemm_set_run(&g, T);
        double t2 = smelt_now();
        llm_seq_free(s);
        if (r >= 0) te[r] = t1 - t0, tg[r] = t2 - t1;
    }
    double me = median(te, runs), mg = median(tg, runs);
    double fl = prefill_flops(c, T), gfl = 2 * matmul_params(c) * T;
    printf("prefill %4d tokens  engine: min %7.1f ms  median %7.1f ms  %8.0f tok/s  %6.1f GFLOP/s (%.2f GFLOP)\n", T, te[0] * 1e3, me * 1e3, T / me,
           fl / me / 1e9, fl / 1e9);
    printf("                    sgemm alone on the projections: min %7.1f ms  median %7.1f ms  %6.1f GFLOP/s (%.2f GFLOP)\n", tg[0] * 1e3, mg * 1e3,
           gfl / mg / 1e9, gfl / 1e9);
    printf("                    engine / sgemm GFLOP/s (median): %.2f (goal >= 0.7)\n", (fl / me) / (gfl / mg));
    gemm_set_free(&g);
    free(tok);
    free(logits);
}

/* B sequences, each prefilled with a 16-token prompt, then `steps` decode steps of one token each
 * in one llm_forward call a step. Returns the median decode tokens/s; prints min/median step time. */
static void open_model(const char *dir, smelt_model **m, llm_engine **e)
{
    die(hf_import(dir, false, m));
    die(llm_engine_new(*m, e));
}

int main(int argc, char **argv)
{
    bench_name = "bench_llm";
    if (argc != 4) {
        fprintf(stderr, "usage: bench_llm TEACHER_DIR BIG_MODEL_DIR RUNS\n");
        return 2;
    }
    int runs = atoi(argv[3]);
    if (runs < 1 || runs > MAX_RUNS) runs = 5;
    printf("\nlanguage-model engine, %d runs each (min and median), %d pool threads, OpenBLAS %d threads\n", runs, smelt_thread_count(),
           openblas_get_num_threads());

    smelt_model *m;
    llm_engine *e;
    open_model(argv[1], &m, &e);
    const smelt_llm_config *c = llm_engine_config(e);
    printf("%s: hidden %d, %d layers, heads %d (kv %d), ffn %d, vocab %d, context %d; %.2f M matmul params\n", argv[1], c->hidden, c->n_layers,
           c->n_heads, c->n_kv_heads, c->ffn, c->vocab_size, c->max_pos, matmul_params(c) / 1e6);
    static const int lens[] = {256, 1024};
    for (int i = 0; i < 2; i++) {
        int T = lens[i] <= c->max_pos ? lens[i] : c->max_pos;
        bench_prefill(e, T, runs);
    }
    static const int batches[] = {1, 4, 16};
    for (int i = 0; i < 3; i++) bench_decode(e, "teacher", batches[i], 32, runs);
    llm_engine_free(e);
    smelt_model_free(m);

    open_model(argv[2], &m, &e);
    c = llm_engine_config(e);
    /* bytes read a decode step: every weight the forward reads (embedding rows excluded) */
    size_t per_tok = llm_engine_weight_bytes(e);
    double rd, triad;
    bandwidth(runs, 1024, &rd, &triad);
    printf("memory bandwidth (best of %d, 1 GiB buffers, %d threads): read-only sum %.1f GB/s, STREAM triad %.1f GB/s\n", runs, smelt_thread_count(), rd,
           triad);
    printf("%s: hidden %d, %d layers, heads %d (kv %d), ffn %d, f32; %.1f MB of weights read a token\n", argv[2], c->hidden, c->n_layers, c->n_heads,
           c->n_kv_heads, c->ffn, per_tok / 1e6);
    double tps = bench_decode(e, "large synth", 1, 16, runs);
    double roof = rd * 1e9 / (double)per_tok;
    printf("roofline (read bandwidth / bytes a token): %.1f tok/s; engine / roofline: %.2f (goal >= 0.8)\n", roof, tps / roof);
    llm_engine_free(e);
    smelt_model_free(m);
    return 0;
}
