/* smelt quant: quantize a language model's linear layers into a new artifact. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "formats/artifact.h"
#include "formats/load.h"
#include "quant/calib.h"
#include "quant/quantize_graph.h"
#include "quant/quantize_model.h"
#include "quant/smoothquant.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "quant",
    "Quantize the linear layers of a language model (or an ONNX graph's weights) into a .smelt artifact.",
    "smelt quant IN -o OUT.smelt --scheme w8|w4|w8a8 [--group 32|64|128] [--asym] [--method rtn|gptq|awq|awq-gptq]\n"
    "                  [--clip] [--act-order] [--refit] [--float-target] [--calib FILE[:TOKENS]]... [--calib-tokens N] [--damp D]\n"
    "                  [--avg-bits B] [--sens-windows N] [--alpha A] [--kv8] [--json]",
    "IN is a Hugging Face folder, an .onnx graph or a .smelt artifact of a float model. For an ONNX\n"
    "graph, --scheme w8 makes every weight read only by MatMul, Gemm or Conv int8 per output channel\n"
    "(RTN), run by the graph executor's int8 paths. For a language model, every linear layer of the\n"
    "decoder blocks is quantized (embeddings and the output head are kept): w8 is int8, symmetric,\n"
    "one scale per output channel; w4 is 4-bit in groups of --group input features (default 128),\n"
    "symmetric, or with a zero point a group with --asym. --method gptq spreads each weight's rounding\n"
    "error over the weights not yet rounded, guided by the layer's inputs on calibration text: --calib\n"
    "files (documents split as in the perplexity protocol; TOKENS of each, by default an equal share\n"
    "of --calib-tokens, 32768) in windows of 256 tokens, blocks quantized in order on the outputs of\n"
    "the already quantized ones; --damp (0.01) steadies the Hessian; --act-order takes the columns by\n"
    "decreasing input energy (group ranges then fixed up front); --float-target aims each layer at the\n"
    "float model's outputs on its own inputs instead of at the float weights on the quantized model's\n"
    "inputs (GPTAQ's asymmetric calibration; 2-2.5x the time). --method awq scales each input channel\n"
    "by its activation size to a power searched on the calibration text (the inverse folded into the\n"
    "preceding norm or projection), then rounds to nearest (with --clip, each group to the range that\n"
    "least changes the layer's outputs); awq-gptq rounds the scaled weights by GPTQ instead. --clip\n"
    "gives RTN a range search on weight error. --refit (gptq, awq, awq-gptq), once a weight is rounded,\n"
    "sets each group's scale to the least-squares one for its codes on the calibration inputs (the\n"
    "layer-output error can only drop; see docs/quant.md for what it does to perplexity). Prints a table of every weight's bits and\n"
    "relative reconstruction error ||W - Q(W)|| / ||W||; --json prints {\"output\", \"scheme\",\n"
    "\"bits_per_weight\", \"bytes_before\", \"bytes_after\", \"layers\": [{\"tensor\", \"bits\",\n"
    "\"group\", \"rel_err\"}]}. Deterministic: the same input and options give the same tensors.\n"
    "w8a8 is w8 weights with the activations quantized to int8 per token at run time and integer\n"
    "products; it needs --calib: SmoothQuant first moves activation outliers into the weights\n"
    "(s = max|X|^A / max|W|^(1-A) per input channel, --alpha A, default 0.5, folded into the norms,\n"
    "v_proj and up_proj; see quant/smoothquant.h). --kv8 (any scheme) makes the engine keep the KV\n"
    "cache in int8 with a scale per token and kv head.",
};

static void show_progress(void *ctx, int done, int total)
{
    (void)total;
    smelt_progress_update(ctx, done);
}

CMD(quant)
{
    const char *out = NULL, *scheme = NULL, *method = "rtn";
    long group = 128, calib_tokens = 32768;
    double damp = 0.01, avg_bits = 0;
    long sens_windows = 16;
    cli_strs calib = {0};
    bool asym = false, json = false, clip = false, act_order = false, refit = false, float_target = false, kv8 = false;
    double alpha = 0.5;
    const cli_opt opts[] = {
        {"output", 'o', OPT_STR, &out, "OUT.smelt", "artifact to write (required)"},
        {"scheme", 0, OPT_STR, &scheme, "SCHEME", "w8, w4 or w8a8 (required)"},
        {"group", 0, OPT_INT, &group, "N", "w4: input features a scale (32, 64 or 128; default 128)"},
        {"asym", 0, OPT_FLAG, &asym, NULL, "w4: a zero point a group (asymmetric)"},
        {"method", 0, OPT_STR, &method, "M", "rtn (round to nearest; the default), gptq, awq or awq-gptq"},
        {"clip", 0, OPT_FLAG, &clip, NULL, "rtn, awq: search each group's range for the least error"},
        {"act-order", 0, OPT_FLAG, &act_order, NULL, "gptq: quantize columns by decreasing activation energy"},
        {"refit", 0, OPT_FLAG, &refit, NULL, "gptq, awq(-gptq): least-squares group scales for the rounded codes"},
        {"float-target", 0, OPT_FLAG, &float_target, NULL, "gptq: aim at the float model's outputs (asymmetric calibration)"},
        {"calib", 0, OPT_STRS, &calib, "FILE[:TOKENS]", "gptq, awq(-gptq): calibration text (repeatable)"},
        {"calib-tokens", 0, OPT_INT, &calib_tokens, "N", "gptq, awq(-gptq): calibration tokens in all (default 32768)"},
        {"damp", 0, OPT_DOUBLE, &damp, "D", "gptq: Hessian dampening, a fraction of its mean diagonal (0.01)"},
        {"avg-bits", 0, OPT_DOUBLE, &avg_bits, "B", "w4: mixed precision, int8 for the most sensitive weights within B bits a weight"},
        {"sens-windows", 0, OPT_INT, &sens_windows, "N", "--avg-bits: calibration windows to measure sensitivity on (16)"},
        {"alpha", 0, OPT_DOUBLE, &alpha, "A", "w8a8: SmoothQuant migration strength, 0 to 1 (0.5)"},
        {"kv8", 0, OPT_FLAG, &kv8, NULL, "int8 KV cache at run time (recorded in the artifact)"},
        {"json", 0, OPT_FLAG, &json, NULL, "print the report as JSON"},
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 1, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (!out || !scheme) {
        fprintf(stderr, "smelt quant: missing %s\nusage: %s\n", !out ? "-o OUT.smelt" : "--scheme", info.usage);
        return 2;
    }
    quant_recipe r = {.scheme = {0, (int)group, asym}, .method = method, .clip = clip, .act_order = act_order, .refit = refit, .float_target = float_target, .calib_window = 256, .damp = damp,
                      .avg_bits = avg_bits, .sens_windows = (int)sens_windows};
    int32_t *calib_ids = NULL;
    smelt_err *err = NULL;
    if (strcmp(scheme, "w8") == 0) r.scheme.bits = 8;
    else if (strcmp(scheme, "w4") == 0) r.scheme.bits = 4;
    else if (strcmp(scheme, "w8a8") == 0) r.scheme.bits = 8;
    else err = SMELT_ERR(SMELT_E_INVALID, "unknown scheme '%s' (supported: w8, w4, w8a8)", scheme);
    bool w8a8 = strcmp(scheme, "w8a8") == 0;
    if (!err && !(alpha >= 0 && alpha <= 1)) err = SMELT_ERR(SMELT_E_INVALID, "--alpha %g: expected between 0 and 1", alpha);
    if (!err && w8a8 && calib.n == 0) err = SMELT_ERR(SMELT_E_INVALID, "w8a8 needs calibration text for SmoothQuant: --calib FILE[:TOKENS]");
    smelt_source_kind kind;
    if (!err) err = smelt_source_kind_of(pos[0], &kind);
    if (!err && !(kind == SMELT_SRC_HF_DIR || kind == SMELT_SRC_ARTIFACT || kind == SMELT_SRC_ONNX))
        err = SMELT_ERR(SMELT_E_INVALID, "%s: quant takes a Hugging Face folder, an .onnx graph or a .smelt artifact", pos[0]);
    smelt_model *m = NULL;
    quant_report *rep = NULL;
    int n_rep = 0;
    if (!err) err = smelt_load_model(pos[0], true, &m);
    if (!err && kind == SMELT_SRC_ONNX) err = quantize_graph_adopt_tokenizer(m, pos[0]); /* ONNX graphs: w8 of MatMul/Gemm/Conv weights */
    if (!err && (avg_bits != 0 || sens_windows != 16) && !(avg_bits > 0 && sens_windows > 0))
        err = SMELT_ERR(SMELT_E_INVALID, "--avg-bits %g with --sens-windows %ld: expected positive values", avg_bits, sens_windows);
    bool needs_calib = strcmp(method, "gptq") == 0 || strcmp(method, "awq") == 0 || strcmp(method, "awq-gptq") == 0 || avg_bits > 0 || w8a8;
    if (!err && refit && strcmp(method, "rtn") == 0)
        err = SMELT_ERR(SMELT_E_INVALID, "--refit fits scales on calibration inputs: it goes with --method gptq, awq or awq-gptq, not rtn");
    if (!err && calib.n > 0 && !needs_calib)
        err = SMELT_ERR(SMELT_E_INVALID, "--calib is read by --method gptq, awq, awq-gptq, by --avg-bits and by w8a8; rtn alone uses no calibration text");
    if (!err && needs_calib) {
        smelt_tokenizer *tok = NULL;
        if (!m->tokenizer_json) err = SMELT_ERR(SMELT_E_INVALID, "%s: no tokenizer.json to read the calibration text with", pos[0]);
        if (!err) err = smelt_tokenizer_load(m->tokenizer_json, strlen(m->tokenizer_json), "tokenizer.json", &tok);
        int32_t eos = m->llm.eos_id >= 0 ? m->llm.eos_id : tok ? smelt_tokenizer_token_id(tok, "<|endoftext|>") : -1;
        if (!err && calib.n == 0)
            err = SMELT_ERR(SMELT_E_INVALID, "%s needs calibration text: --calib FILE[:TOKENS]", avg_bits > 0 ? "--avg-bits" : method);
        if (!err) err = calib_windows(tok, eos, calib.v, calib.n, calib_tokens, r.calib_window, &calib_ids, &r.n_calib);
        r.calib = calib_ids;
        smelt_tokenizer_free(tok);
    }
    json_t *sq = NULL;
    size_t sq_before = 0; /* SmoothQuant leaves the projections f32: the report compares with their size before it */
    if (!err && w8a8) err = smelt_err_wrap(smoothquant_apply(m, r.calib, r.n_calib, r.calib_window, alpha, &sq, &sq_before), "%s", pos[0]);
    if (!err) {
        smelt_progress p;
        smelt_progress_begin(&p, "quantizing", 0);
        err = smelt_err_wrap(m->kind == SMELT_KIND_GRAPH ? quantize_graph(m, &r, show_progress, &p, &rep, &n_rep)
                                                         : quantize_llm(m, &r, show_progress, &p, &rep, &n_rep), "%s", pos[0]);
        smelt_progress_end(&p);
    }
    if (!err && (w8a8 || kv8)) err = w8a8_record(m, w8a8, sq, kv8);
    else json_decref(sq);
    if (!err) {
        artifact_write_opts wo = {"any", cli_command_line, SMELT_VERSION};
        err = artifact_write(out, m, &wo);
    }
    free(calib_ids);
    if (err) {
        quant_report_free(rep, n_rep);
        smelt_model_free(m);
        return cli_fail("quant", err);
    }
    size_t before = 0, after = 0;
    int64_t n_weights = 0;
    for (int i = 0; i < n_rep; i++) {
        before += rep[i].bytes_before;
        after += rep[i].bytes_after;
        const smelt_tensor *t = smelt_model_find(m, rep[i].tensor);
        n_weights += smelt_shape_numel(t->ndim, t->shape);
    }
    if (sq_before) before = sq_before;
    double bpw = n_weights ? 8.0 * (double)after / (double)n_weights : 0;
    char name[16];
    snprintf(name, sizeof name, "%s%s%s", scheme, r.scheme.bits == 4 ? (asym ? "-asym" : "-sym") : "", "");
    if (json) {
        json_t *layers = json_array();
        for (int i = 0; i < n_rep; i++)
        {
            json_t *l = json_pack("{s:s, s:i, s:i, s:f}", "tensor", rep[i].tensor, "bits", rep[i].bits, "group", rep[i].group, "rel_err", rep[i].rel_err);
            if (rep[i].sensitivity >= 0) json_object_set_new(l, "sensitivity_kl", json_real(rep[i].sensitivity));
            json_array_append_new(layers, l);
        }
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:f, s:I, s:I, s:o}", "output", out, "scheme", scheme, "group", r.scheme.bits == 4 ? (int)group : 0,
                              "method", method, "bits_per_weight", bpw, "bytes_before", (json_int_t)before, "bytes_after", (json_int_t)after, "layers", layers);
        json_dumpf(o, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(o);
    } else {
        printf("%-52s %4s %6s %10s%s\n", "tensor", "bits", "group", "rel error", avg_bits > 0 ? "  sensitivity (KL)" : "");
        for (int i = 0; i < n_rep; i++) {
            printf("%-52s %4d %6d %10.5f", rep[i].tensor, rep[i].bits, rep[i].group, rep[i].rel_err);
            if (rep[i].sensitivity >= 0) printf("  %.6f", rep[i].sensitivity);
            printf("\n");
        }
        printf("%s: %s (%s), %d weights, %.2f bits per weight with scales, %zu -> %zu bytes\n", out, name, method, n_rep, bpw, before, after);
    }
    quant_report_free(rep, n_rep);
    smelt_model_free(m);
    return 0;
}
