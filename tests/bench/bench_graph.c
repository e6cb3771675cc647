/* ONNX Runtime side by side: the two ONNX fixtures run by smelt's graph executor and by ONNX
 * Runtime (tests/bench/ort_run.js) on the same inputs, in one benchmark run.
 *   bench_graph prepare DIR         writes the cases' inputs and DIR/cases.json
 *   bench_graph report DIR RUNS [CASE...]
 *                                   times smelt on every case (or the named ones: profiling one
 *                                   case under perf) (one warm-up, RUNS runs), reads ONNX Runtime's
 *                                   outputs and timings, prints max |difference| and the latency
 *                                   ratio (min and median; ratio < 1: smelt is faster)
 * Cases: fashion-cnn at batch 1 and 64 (images from a fixed-seed generator, normalized like the
 * training data), tiny-llama at 32 and 256 tokens (ids of the prose val text). The *_int8 rows run
 * the same model quantized by `smelt quant --scheme w8` (quant/quantize_graph.h) on the same
 * inputs, against ONNX Runtime on the float model: max |diff| there is the quantization's. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/threads.h"
#include "formats/onnx.h"
#include "formats/safetensors.h"
#include "quant/quantize_graph.h"
#include "runtime/graph/graph_exec.h"

typedef struct {
    const char *name, *model, *input, *output;
    int is_ids;
    int64_t shape[4];
    int ndim;
    int int8; /* quantized w8 in process; inputs, ONNX Runtime timings and outputs of case `base` */
    const char *base;
} bench_case;

static const bench_case cases[] = {
    {"cnn_b1", "models/fashion-cnn/model.onnx", "image", "logits", 0, {1, 1, 28, 28}, 4, 0, NULL},
    {"cnn_b64", "models/fashion-cnn/model.onnx", "image", "logits", 0, {64, 1, 28, 28}, 4, 0, NULL},
    {"tiny_llama_t32", "models/tiny-llama/model.onnx", "input_ids", "logits", 1, {1, 32}, 2, 0, NULL},
    {"tiny_llama_t256", "models/tiny-llama/model.onnx", "input_ids", "logits", 1, {1, 256}, 2, 0, NULL},
    {"cnn_b1_int8", "models/fashion-cnn/model.onnx", "image", "logits", 0, {1, 1, 28, 28}, 4, 1, "cnn_b1"},
    {"cnn_b64_int8", "models/fashion-cnn/model.onnx", "image", "logits", 0, {64, 1, 28, 28}, 4, 1, "cnn_b64"},
    {"tiny_llama_t32_int8", "models/tiny-llama/model.onnx", "input_ids", "logits", 1, {1, 32}, 2, 1, "tiny_llama_t32"},
    {"tiny_llama_t256_int8", "models/tiny-llama/model.onnx", "input_ids", "logits", 1, {1, 256}, 2, 1, "tiny_llama_t256"},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static size_t numel(const bench_case *c)
{
    size_t n = 1;
    for (int i = 0; i < c->ndim; i++) n *= (size_t)c->shape[i];
    return n;
}

static char *case_path(const char *dir, const char *sub, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(sub) + strlen(name) + strlen(ext) + 4;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s%s%s", dir, sub, name, ext);
    return p;
}

static void *read_all(const char *path, size_t *len)
{
    char *buf = NULL;
    smelt_err *err = smelt_read_file(path, (size_t)1 << 30, &buf, len);
    if (err) {
        fprintf(stderr, "bench_graph: %s\n", smelt_err_msg(err));
        exit(1);
    }
    return buf;
}

static int prepare(const char *dir)
{
    smelt_model *ids = smelt_model_new(SMELT_KIND_GRAPH, "ids");
    smelt_err *err = safetensors_read("data/val-ids.safetensors", ids, NULL);
    if (err) {
        fprintf(stderr, "bench_graph: %s\n", smelt_err_msg(err));
        return 1;
    }
    const int32_t *prose = smelt_model_find(ids, "ids.prose")->data;
    json_t *list = json_array();
    uint64_t rng = 42;
    for (int i = 0; i < N_CASES; i++) {
        const bench_case *c = &cases[i];
        if (c->int8) continue; /* runs on its base case's inputs */
        size_t n = numel(c), bytes = n * (c->is_ids ? 8 : 4);
        void *buf = malloc(bytes);
        for (size_t k = 0; k < n; k++) {
            if (c->is_ids) {
                ((int64_t *)buf)[k] = prose[k];
            } else {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                float pixel = (float)(rng >> 56) / 255.0f; /* a byte, as an image's */
                ((float *)buf)[k] = (pixel - 0.2860f) / 0.3530f;
            }
        }
        char *p = case_path(dir, "", c->name, ".in.bin");
        err = smelt_write_file_atomic(p, buf, bytes);
        free(p);
        free(buf);
        if (err) {
            fprintf(stderr, "bench_graph: %s\n", smelt_err_msg(err));
            return 1;
        }
        json_t *shape = json_array();
        for (int d = 0; d < c->ndim; d++) json_array_append_new(shape, json_integer(c->shape[d]));
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "name", c->name, "model", c->model, "input", c->input, "output", c->output,
                                              "dtype", c->is_ids ? "int64" : "float32", "shape", shape));
    }
    char *p = case_path(dir, "", "cases", ".json");
    json_dump_file(list, p, JSON_INDENT(1));
    free(p);
    json_decref(list);
    smelt_model_free(ids);
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int report(const char *dir, int runs, char **only, int n_only)
{
    char *tp = case_path(dir, "ort/", "timings", ".json");
    json_t *ort_t = json_load_file(tp, 0, NULL);
    free(tp);
    if (!ort_t) {
        fprintf(stderr, "bench_graph: no ONNX Runtime timings in %s/ort\n", dir);
        return 1;
    }
    printf("ONNX executor vs ONNX Runtime %s (CPU), same inputs, %d runs after a warm-up, %d smelt threads\n", "(onnxruntime-node)", runs,
           smelt_thread_count());
    printf("%-20s %12s %12s %12s %12s %9s %9s %11s\n", "case", "smelt min", "smelt med", "ORT min", "ORT med", "min ratio", "med ratio", "max |diff|");
    for (int i = 0; i < N_CASES; i++) {
        const bench_case *c = &cases[i];
        bool wanted = n_only == 0;
        for (int k = 0; k < n_only; k++) wanted |= strcmp(only[k], c->name) == 0;
        if (!wanted) continue;
        smelt_model *m = NULL;
        smelt_graph *g = NULL;
        smelt_err *err = onnx_read(c->model, &m);
        const char *base = c->int8 ? c->base : c->name;
        if (!err && c->int8) {
            quant_recipe r = {.scheme = {8, 128, false}, .method = "rtn", .calib_window = 256, .damp = 0.01};
            quant_report *rep = NULL;
            int n_rep = 0;
            err = quantize_graph(m, &r, NULL, NULL, &rep, &n_rep);
            quant_report_free(rep, n_rep);
        }
        if (!err) err = smelt_graph_load(m, &g);
        size_t len;
        char *ip = case_path(dir, "", base, ".in.bin");
        void *in = read_all(ip, &len);
        free(ip);
        smelt_tensor t = {.name = (char *)c->input, .dtype = c->is_ids ? SMELT_DT_I64 : SMELT_DT_F32, .ndim = c->ndim, .data = in, .nbytes = len};
        memcpy(t.shape, c->shape, sizeof c->shape);
        double *ms = malloc((size_t)runs * sizeof *ms);
        smelt_tensor *outs = NULL;
        int n_outs = 0;
        for (int r = -1; !err && r < runs; r++) {
            smelt_graph_outputs_free(outs, n_outs);
            outs = NULL;
            double t0 = smelt_now();
            err = smelt_graph_run(g, &t, 1, &outs, &n_outs);
            if (r >= 0) ms[r] = (smelt_now() - t0) * 1e3;
        }
        if (err) {
            fprintf(stderr, "bench_graph: %s: %s\n", c->name, smelt_err_msg(err));
            return 1;
        }
        char *op = case_path(dir, "ort/", base, ".out.bin");
        size_t olen;
        float *ref = read_all(op, &olen);
        free(op);
        double diff = olen == outs[0].nbytes ? 0 : INFINITY;
        for (size_t k = 0; isfinite(diff) && k < olen / 4; k++) diff = fmax(diff, fabs(((float *)outs[0].data)[k] - ref[k]));
        json_t *ot = json_object_get(ort_t, base);
        double om[64];
        int on = (int)json_array_size(ot);
        for (int k = 0; k < on && k < 64; k++) om[k] = json_number_value(json_array_get(ot, (size_t)k));
        qsort(ms, (size_t)runs, sizeof *ms, cmp_d);
        qsort(om, (size_t)on, sizeof *om, cmp_d);
        printf("%-20s %9.3f ms %9.3f ms %9.3f ms %9.3f ms %9.2f %9.2f %11.2e\n", c->name, ms[0], ms[runs / 2], om[0], om[on / 2], ms[0] / om[0],
               ms[runs / 2] / om[on / 2], diff);
        free(ms);
        free(ref);
        free(in);
        smelt_graph_outputs_free(outs, n_outs);
        smelt_graph_free(g);
        smelt_model_free(m);
    }
    json_decref(ort_t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "prepare") == 0) return prepare(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "report") == 0) {
        int runs = atoi(argv[3]);
        return report(argv[2], runs < 1 || runs > 100000 ? 9 : runs, argv + 4, argc - 4);
    }
    fprintf(stderr, "usage: bench_graph prepare DIR | bench_graph report DIR RUNS [CASE...]\n");
    return 2;
}
