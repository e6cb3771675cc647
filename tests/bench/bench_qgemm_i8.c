/* w8a8 prefill against f32, side by side in one run (min and median of several runs):
 *   - one projection y = x · W^T at prefill shapes (the teacher's and a larger synthetic one),
 *     through the engine's two paths: f32 weights (OpenBLAS sgemm on the thread pool) and w8a8
 *     (per-token int8 activations, the best integer kernel); GOP/s counts 2 · T · rows · cols;
 *   - optionally whole prefills of a float model and its w8a8 artifact (tokens/s).
 * Usage: bench_qgemm_i8 RUNS [FLOAT_MODEL W8A8_ARTIFACT] */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/load.h"
#include "runtime/llm_internal.h"

#include "tests/bench/bench_util.h"

static uint64_t rng = 1;
static float frand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static void bench_shape(int T, int rows, int cols, int runs)
{
    float *w = malloc((size_t)rows * cols * sizeof *w), *x = malloc((size_t)T * cols * sizeof *x), *y = malloc((size_t)T * rows * sizeof *y);
    int8_t *q = malloc((size_t)rows * cols);
    float *sc = malloc((size_t)rows * sizeof *sc);
    if (!w || !x || !y || !q || !sc) die(SMELT_ERR(SMELT_E_NOMEM, "out of memory"));
    for (size_t i = 0; i < (size_t)rows * cols; i++) w[i] = frand() * 0.05f;
    for (size_t i = 0; i < (size_t)T * cols; i++) x[i] = frand();
    for (int r = 0; r < rows; r++) {
        float mx = 0;
        for (int c = 0; c < cols; c++) mx = mx > w[(size_t)r * cols + c] ? mx : w[(size_t)r * cols + c];
        sc[r] = mx / 127;
        for (int c = 0; c < cols; c++) q[(size_t)r * cols + c] = (int8_t)(w[(size_t)r * cols + c] / sc[r]);
    }
    llm_linear f = {.w = w, .out = rows, .in = cols};
    llm_linear a = {.out = rows, .in = cols, .a8 = true};
    if (!i8mat_pack(&a.a8m, q, sc, rows, cols)) die(SMELT_ERR(SMELT_E_NOMEM, "out of memory"));
    double tf[MAX_RUNS], ta[MAX_RUNS];
    llm_linear_apply(&f, x, T, y); /* warm up both */
    llm_linear_apply(&a, x, T, y);
    for (int r = 0; r < runs; r++) {
        double t0 = smelt_now();
        llm_linear_apply(&f, x, T, y);
        double t1 = smelt_now();
        llm_linear_apply(&a, x, T, y);
        tf[r] = t1 - t0, ta[r] = smelt_now() - t1;
    }
    double ops = 2.0 * T * rows * cols * 1e-9, mf = median(tf, runs), ma = median(ta, runs);
    printf("projection T=%d %dx%d: f32 sgemm %.1f GFLOP/s (min %.3f ms, median %.3f ms); w8a8 %s %.1f GOP/s (min %.3f ms, median %.3f ms); "
           "w8a8 / f32 %.2fx\n",
           T, rows, cols, ops / mf, tf[0] * 1e3, mf * 1e3, i8_kernels_best()->name, ops / ma, ta[0] * 1e3, ma * 1e3, mf / ma);
    i8mat_free(&a.a8m);
    free(w), free(x), free(y), free(q), free(sc);
}

static double prefill_once(llm_engine *e, const int32_t *ids, int n)
{
    llm_seq *s = NULL;
    die(llm_seq_new(e, &s));
    float *logits = malloc((size_t)llm_engine_config(e)->vocab_size * sizeof *logits);
    llm_batch_item it = {s, ids, n, false};
    double t0 = smelt_now();
    die(llm_forward(e, &it, 1, logits));
    double dt = smelt_now() - t0;
    free(logits);
    llm_seq_free(s);
    return dt;
}

static void bench_prefill(const char *float_path, const char *a8_path, int n, int runs)
{
    smelt_model *mf = NULL, *ma = NULL;
    die(smelt_load_model(float_path, true, &mf));
    die(smelt_load_model(a8_path, true, &ma));
    llm_engine *ef = NULL, *ea = NULL;
    die(llm_engine_new(mf, &ef));
    die(llm_engine_new(ma, &ea));
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((i * 7919) % llm_engine_config(ef)->vocab_size);
    double tf[MAX_RUNS], ta[MAX_RUNS];
    prefill_once(ef, ids, n);
    prefill_once(ea, ids, n);
    for (int r = 0; r < runs; r++) tf[r] = prefill_once(ef, ids, n), ta[r] = prefill_once(ea, ids, n);
    double mdf = median(tf, runs), mda = median(ta, runs);
    printf("prefill %d tokens: f32 %.0f tok/s (best %.0f), w8a8 %.0f tok/s (best %.0f), w8a8 / f32 %.2fx\n", n, n / mdf, n / tf[0], n / mda, n / ta[0],
           mdf / mda);
    free(ids);
    llm_engine_free(ef);
    llm_engine_free(ea);
    smelt_model_free(mf);
    smelt_model_free(ma);
}

int main(int argc, char **argv)
{
    bench_name = "bench_qgemm_i8";
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: bench_qgemm_i8 RUNS [FLOAT_MODEL W8A8_ARTIFACT]\n");
        return 2;
    }
    int runs = atoi(argv[1]);
    runs = runs < 1 ? 1 : runs > MAX_RUNS ? MAX_RUNS : runs;
    openblas_set_num_threads(1); /* as the engine runs it: one pool, ours */
    bench_shape(256, 768, 256, runs);
    bench_shape(1024, 768, 256, runs);
    bench_shape(512, 2048, 2048, runs);
    bench_shape(1, 2048, 2048, runs);
    if (argc == 4) {
        bench_prefill(argv[2], argv[3], 256, runs);
        bench_prefill(argv[2], argv[3], 1024, runs);
    }
    return 0;
}
