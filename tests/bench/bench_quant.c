/* Quantized kernels and quantized decode against the machine's limits, side by side in one run
 * (min and median of several runs):
 *   - matrix-vector products at 4096 x 4096 and 11008 x 4096 (the shapes of a 7B Llama's
 *     projections) with int8 per-channel and int4 g128 (sym and asym) weights: effective bandwidth
 *     (bytes of weights, scales and zero points read per second) against the memory roofline
 *     measured just before each run (goal >= 0.85; the int8-activation kernels on the decode
 *     layout the engine gives them), and time against OpenBLAS sgemv on the same f32 matrix;
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
#include "runtime/cpu/qmatmul_x8.h"
#include "runtime/llm.h"

#include "tests/bench/bench_util.h"

/* Copies of a matrix are cycled through so that every product reads its weights from memory, as
 * decode does (each layer's weights once a token): one matrix alone (8 to 45 MB here) would stay
 * partly in the 32 MiB L3 between repetitions and beat the memory roofline. */
#define COLD_BYTES (512.0 * (1 << 20))

static int copies_for(double bytes) { return (int)(COLD_BYTES / bytes) + 1; }

/* One timed run of a product against the roofline measured just before it: the machine is shared
 * and its memory bandwidth moves by a third within a minute, so each run's ratio is to its own
 * roofline and the report gives the median and best of those ratios. */
typedef struct {
    double t[MAX_RUNS], ratio[MAX_RUNS], roof[MAX_RUNS];
} paired;

static bw_ctx bw; /* the roofline's buffers, made once */

/* fills p->roof[r] and returns it; the caller times run r and calls pair_done */
static double pair_roof(paired *p, int r)
{
    double rd, tr, a = bw_pass(&bw, &rd, &tr), b = bw_pass(&bw, &rd, &tr); /* the better of two: a pass is short */
    return p->roof[r] = a > b ? a : b;
}

static void pair_done(paired *p, int r, double secs, double bytes)
{
    p->t[r] = secs;
    p->ratio[r] = bytes / secs / 1e9 / p->roof[r];
}

/* medians (median() sorts the arrays: t[0] is then the fastest run) */
static void pair_summary(paired *p, int runs, double *t_med, double *ratio_med, double *roof_med)
{
    *t_med = median(p->t, runs);
    *ratio_med = median(p->ratio, runs);
    *roof_med = median(p->roof, runs);
}

/* f32 sgemv the way the engine runs it: OpenBLAS single-threaded on each thread's rows of the
 * pool (two pools on two cores would also leave OpenBLAS's threads spinning into the next
 * roofline pass) */
typedef struct {
    const float *w, *x;
    float *y;
    int cols;
} sgemv_job;

static void sgemv_rows(void *ctx, int64_t begin, int64_t end)
{
    const sgemv_job *j = ctx;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(end - begin), j->cols, 1.0f, j->w + (size_t)begin * j->cols, j->cols, j->x, 1, 0.0f, j->y + begin, 1);
}

static void sgemv_pool(const float *w, int rows, int cols, const float *x, float *y)
{
    sgemv_job j = {w, x, y, cols};
    smelt_parallel_for(rows, 64, sgemv_rows, &j);
}

static void bench_matvec(int rows, int cols, int runs)
{
    size_t n = (size_t)rows * cols;
    double f32_bytes = (double)n * 4;
    int nf = copies_for(f32_bytes);
    float *w = malloc(n * nf * sizeof *w), *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)rows * sizeof *y);
    if (!w || !x || !y) die(SMELT_ERR(SMELT_E_NOMEM, "matvec buffers"));
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        w[i] = (float)((int64_t)(s >> 33) - (1LL << 30)) / (float)(1LL << 30) * 0.05f;
    }
    for (int c = 1; c < nf; c++) memcpy(w + n * c, w, n * sizeof *w);
    for (int i = 0; i < cols; i++) x[i] = (float)(i % 13) / 13.0f - 0.5f;
    printf("matvec %5d x %4d: each product reads a cold copy (%d copies of f32); each run's bandwidth against the roofline (read-only or "
           "STREAM triad, the larger) measured just before it\n", rows, cols, nf);
    /* each pass reads the whole matrix once; repeat inside a run so a run lasts ~0.1 s or more */
    int reps = (int)(2e9 / f32_bytes) + nf;
    paired pf;
    for (int r = -1; r < runs; r++) {
        if (r >= 0) pair_roof(&pf, r);
        double t0 = smelt_now();
        for (int k = 0; k < reps; k++) sgemv_pool(w + n * (k % nf), rows, cols, x, y);
        if (r >= 0) pair_done(&pf, r, (smelt_now() - t0) / reps, f32_bytes);
    }
    double mf, rf, roof;
    pair_summary(&pf, runs, &mf, &rf, &roof);
    printf("matvec %5d x %4d  sgemv f32             : min %7.3f ms  median %7.3f ms  %6.1f GB/s (%.2f of roofline %.1f)\n", rows, cols, pf.t[0] * 1e3,
           mf * 1e3, f32_bytes / mf / 1e9, rf, roof);
    const struct {
        const char *name;
        quant_scheme s;
    } schemes[] = {{"int8 channel", {8, 0, false}}, {"int4 g128 sym", {4, 128, false}}, {"int4 g128 asym", {4, 128, true}}};
    for (size_t k = 0; k < sizeof schemes / sizeof schemes[0]; k++) {
        const quant_scheme *sc = &schemes[k].s;
        int group = sc->bits == 8 ? cols : sc->group, ng = cols / group;
        size_t qb = sc->bits == 8 ? n : n / 2, nsc = (size_t)rows * ng;
        void *q = malloc(n);
        float *scale = malloc(nsc * sizeof *scale);
        uint8_t *zero = sc->asym ? malloc(nsc) : NULL;
        if (!q || !scale || (sc->asym && !zero)) die(SMELT_ERR(SMELT_E_NOMEM, "quantized matrix"));
        rtn_quantize(w, rows, cols, sc, q, scale, zero);
        qmat q0 = {sc->bits, rows, cols, group, q, scale, zero, false};
        double bytes = (double)qmat_bytes(&q0);
        int nq = copies_for(bytes);
        /* the copies: weights, scales and zero points each in one block */
        uint8_t *qc = malloc(qb * nq), *zc = sc->asym ? malloc(nsc * nq) : NULL;
        float *scc = malloc(nsc * nq * sizeof *scc);
        qmat *qm = malloc((size_t)nq * sizeof *qm);
        if (!qc || !scc || !qm || (sc->asym && !zc)) die(SMELT_ERR(SMELT_E_NOMEM, "quantized copies"));
        for (int c = 0; c < nq; c++) {
            memcpy(qc + qb * c, q, qb);
            memcpy(scc + nsc * c, scale, nsc * sizeof *scc);
            if (zc) memcpy(zc + nsc * c, zero, nsc);
            qm[c] = (qmat){sc->bits, rows, cols, group, qc + qb * c, scc + nsc * c, zc ? zc + nsc * c : NULL, false};
        }
        int qreps = (int)(2e9 / bytes / 4) + nq;
        /* float activations (qmat_mul), then int8 activations (qmat_mul_x8, what decode runs) on
         * the decode layout the engine gives them (qmatmul.h) */
        for (int path = 0; path < 2; path++) {
            if (path == 1 && qmat_can_interleave(&qm[0])) {
                size_t ib = qmat_interleaved_bytes(&qm[0]);
                uint8_t *ic = malloc(ib * nq);
                if (!ic) die(SMELT_ERR(SMELT_E_NOMEM, "interleaving"));
                for (int c = 0; c < nq; c++) {
                    qmat_interleave(&qm[c], ic + ib * c);
                    qm[c].q = ic + ib * c;
                    qm[c].interleaved = true;
                }
                free(qc);
                qc = ic; /* freed below */
            }
            paired pq;
            for (int r = -1; r < runs; r++) {
                if (r >= 0) pair_roof(&pq, r);
                double t0 = smelt_now();
                for (int i = 0; i < qreps; i++)
                    if (!(path ? qmat_mul_x8(&qm[i % nq], x, 1, y) : qmat_mul(&qm[i % nq], x, 1, y))) die(SMELT_ERR(SMELT_E_NOMEM, "qmat_mul"));
                if (r >= 0) pair_done(&pq, r, (smelt_now() - t0) / qreps, bytes);
            }
            double m, rq;
            pair_summary(&pq, runs, &m, &rq, &roof);
            printf("matvec %5d x %4d  %-14s x %s: min %7.3f ms  median %7.3f ms  %6.1f GB/s (%.2f of roofline %.1f, goal >= 0.85)  %.2fx sgemv\n", rows,
                   cols, schemes[k].name, path ? "int8" : "f32 ", pq.t[0] * 1e3, m * 1e3, bytes / m / 1e9, rq, roof, mf / m);
        }
        free(q), free(scale), free(zero), free(qc), free(scc), free(zc), free(qm);
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
    openblas_set_num_threads(1);
    bw = bw_open(256);
    printf("\nquantized kernels (%s; int8 activations %s), %d runs each (min and median), %d pool threads; memory bandwidth: read-only %.1f GB/s, "
           "STREAM triad %.1f GB/s (the roofline of each shape is measured again just before it)\n",
           qmat_kernels_best()->name, qx_kernels_best()->name, runs, smelt_thread_count(), rd, triad);
    bench_matvec(4096, 4096, runs);
    bench_matvec(11008, 4096, runs);
    bw_close(&bw);
    hf_synth_opts o = {.arch = "llama", .hidden = 2048, .n_layers = layers, .n_heads = 16, .n_kv_heads = 16, .ffn = 5632, .vocab_size = 4096,
                       .max_pos = 512, .dtype = SMELT_DT_F32, .seed = 1};
    die(hf_synth_check(&o));
    printf("decode of a random Llama (hidden 2048, %d layers, ffn 5632): %.2f B parameters\n", layers, hf_synth_param_count(&o) / 1e9);
    double f = decode_model(&o, "f32", runs), w8 = decode_model(&o, "w8", runs), w4 = decode_model(&o, "w4", runs);
    printf("decode speed-up over f32 (median): w8 %.2fx, w4 g128 %.2fx (goal: w4 >= 5x)\n", w8 / f, w4 / f);
    return 0;
}
