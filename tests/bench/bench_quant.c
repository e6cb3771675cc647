/* Quantized kernels and quantized decode against the machine's limits, side by side in one run
 * (min and median of several runs):
 *   - matrix-vector products at 4096 x 4096 and 11008 x 4096 (the shapes of a 7B Llama's
 *     projections) with int8 per-channel and int4 g128 (sym and asym) weights: effective bandwidth
 *     (bytes of weights, scales and zero points read per second) against this run's read-only
 *     roofline (goal >= 0.85), and time against OpenBLAS sgemv on the same f32 matrix;
 *   - decode at batch 1 of a ~0.84 B-parameter random Llama (hidden 2048, 16 layers, built in
 *     memory by hf_synth) in f32, w8 and w4 g128: tokens/s and the ratio to f32 (goal: w4 >= 5x).
 * Usage: bench_quant RUNS [LAYERS] */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/threads.h"
#include "formats/hf_synth.h"
#include "quant/quantize_model.h"
#include "quant/rtn.h"
#include "runtime/cpu/qmatmul.h"
#include "runtime/llm.h"

#include "tests/bench/bench_util.h"

static void bench_matvec(int rows, int cols, int runs, double roof_gbs)
{
    float *w = malloc((size_t)rows * cols * sizeof *w), *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)rows * sizeof *y);
    if (!w || !x || !y) die(SMELT_ERR(SMELT_E_NOMEM, "matvec buffers"));
    uint64_t s = 12345;
    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        w[i] = (float)((int64_t)(s >> 33) - (1LL << 30)) / (float)(1LL << 30) * 0.05f;
    }
    for (int i = 0; i < cols; i++) x[i] = (float)(i % 13) / 13.0f - 0.5f;
    /* each pass reads the whole matrix once; repeat inside a run so a run lasts ~0.1 s or more */
    int reps = (int)(2e9 / ((double)rows * cols * 4)) + 1;
    double t[MAX_RUNS], tf[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        double t0 = smelt_now();
        for (int k = 0; k < reps; k++) cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, x, 1, 0.0f, y, 1);
        tf[r] = (smelt_now() - t0) / reps;
    }
    double mf = median(tf, runs), f32_bytes = (double)rows * cols * 4;
    printf("matvec %5d x %4d  sgemv f32    : min %7.3f ms  median %7.3f ms  %6.1f GB/s (%.2f of roofline)\n", rows, cols, tf[0] * 1e3, mf * 1e3,
           f32_bytes / mf / 1e9, f32_bytes / mf / 1e9 / roof_gbs);
    const struct {
        const char *name;
        quant_scheme s;
    } schemes[] = {{"int8 channel", {8, 0, false}}, {"int4 g128 sym", {4, 128, false}}, {"int4 g128 asym", {4, 128, true}}};
    for (size_t k = 0; k < sizeof schemes / sizeof schemes[0]; k++) {
        const quant_scheme *sc = &schemes[k].s;
        int group = sc->bits == 8 ? cols : sc->group, ng = cols / group;
        void *q = malloc((size_t)rows * cols);
        float *scale = malloc((size_t)rows * ng * sizeof *scale);
        uint8_t *zero = sc->asym ? malloc((size_t)rows * ng) : NULL;
        if (!q || !scale || (sc->asym && !zero)) die(SMELT_ERR(SMELT_E_NOMEM, "quantized matrix"));
        rtn_quantize(w, rows, cols, sc, q, scale, zero);
        qmat qm = {sc->bits, rows, cols, group, q, scale, zero};
        double bytes = (double)qmat_bytes(&qm);
        int qreps = reps * 4;
        for (int r = -1; r < runs; r++) {
            double t0 = smelt_now();
            for (int i = 0; i < qreps; i++)
                if (!qmat_mul(&qm, x, 1, y)) die(SMELT_ERR(SMELT_E_NOMEM, "qmat_mul"));
            if (r >= 0) t[r] = (smelt_now() - t0) / qreps;
        }
        double m = median(t, runs);
        printf("matvec %5d x %4d  %-13s: min %7.3f ms  median %7.3f ms  %6.1f GB/s (%.2f of roofline, goal >= 0.85)  %.2fx sgemv\n", rows, cols,
               schemes[k].name, t[0] * 1e3, m * 1e3, bytes / m / 1e9, bytes / m / 1e9 / roof_gbs, mf / m);
        free(q), free(scale), free(zero);
    }
    free(w), free(x), free(y);
}

static double decode_model(const hf_synth_opts *o, const char *scheme, int runs)
{
    smelt_model *m = NULL;
    hf_synth_opts opts = *o;
    die(hf_synth(&opts, &m));
    if (strcmp(scheme, "f32") != 0) {
        quant_recipe r = {.scheme = {strcmp(scheme, "w8") == 0 ? 8 : 4, 128, false}, .method = "rtn"};
        quant_report *rep = NULL;
        int n = 0;
        die(quantize_llm(m, &r, NULL, NULL, &rep, &n));
        quant_report_free(rep, n);
    }
    llm_engine *e = NULL;
    die(llm_engine_new(m, &e));
    char label[64];
    snprintf(label, sizeof label, "%s (%.0f MB a token)", scheme, llm_engine_weight_bytes(e) / 1e6);
    double tps = bench_decode(e, label, 1, 16, runs);
    llm_engine_free(e);
    smelt_model_free(m);
    return tps;
}

int main(int argc, char **argv)
{
    bench_name = "bench_quant";
    if (argc < 2) {
        fprintf(stderr, "usage: bench_quant RUNS [LAYERS]\n");
        return 2;
    }
    int runs = atoi(argv[1]), layers = argc > 2 ? atoi(argv[2]) : 16;
    if (runs < 1 || runs > MAX_RUNS) runs = 5;
    if (layers < 1) layers = 16;
    double rd, triad;
    bandwidth(runs, 1024, &rd, &triad);
    printf("\nquantized kernels (%s), %d runs each (min and median), %d pool threads; memory bandwidth: read-only %.1f GB/s (the roofline), STREAM triad "
           "%.1f GB/s\n",
           qmat_kernels_best()->name, runs, smelt_thread_count(), rd, triad);
    bench_matvec(4096, 4096, runs, rd);
    bench_matvec(11008, 4096, runs, rd);
    hf_synth_opts o = {.arch = "llama", .hidden = 2048, .n_layers = layers, .n_heads = 16, .n_kv_heads = 16, .ffn = 5632, .vocab_size = 4096,
                       .max_pos = 512, .dtype = SMELT_DT_F32, .seed = 1};
    die(hf_synth_check(&o));
    printf("decode of a random Llama (hidden 2048, %d layers, ffn 5632): %.2f B parameters\n", layers, hf_synth_param_count(&o) / 1e9);
    double f = decode_model(&o, "f32", runs), w8 = decode_model(&o, "w8", runs), w4 = decode_model(&o, "w4", runs);
    printf("decode speed-up over f32 (median): w8 %.2fx, w4 g128 %.2fx (goal: w4 >= 5x)\n", w8 / f, w4 / f);
    return 0;
}
