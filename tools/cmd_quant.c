/* smelt quant: quantize a language model's linear layers into a new artifact. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "formats/artifact.h"
#include "formats/load.h"
#include "quant/calib.h"
#include "quant/quantize_model.h"
#include "quant/smoothquant.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "quant",
    "Quantize the linear layers of a language model into a .smelt artifact.",
    "smelt quant IN -o OUT.smelt --scheme w8|w4|w8a8 [--group 32|64|128] [--asym] [--method rtn|gptq]\n"
    "                  [--calib FILE[:TOKENS]]... [--calib-tokens N] [--damp D] [--alpha A] [--kv8] [--json]",
    "IN is a Hugging Face folder or a .smelt artifact of a float model. Every linear layer of the\n"
    "decoder blocks is quantized (embeddings and the output head are kept): w8 is int8, symmetric,\n"
    "one scale per output channel; w4 is 4-bit in groups of --group input features (default 128),\n"
    "symmetric, or with a zero point a group with --asym. --method gptq spreads each weight's rounding\n"
    "error over the weights not yet rounded, guided by the layer's inputs on calibration text: --calib\n"
    "files (documents split as in the perplexity protocol; TOKENS of each, by default an equal share\n"
    "of --calib-tokens, 32768) in windows of 256 tokens, blocks quantized in order on the outputs of\n"
    "the already quantized ones; --damp (0.01) steadies the Hessian. Prints a table of every weight's bits and\n"
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
    double damp = 0.01;
    cli_strs calib = {0};
    bool asym = false, json = false, kv8 = false;
    double alpha = 0.5;
    const cli_opt opts[] = {
        {"output", 'o', OPT_STR, &out, "OUT.smelt", "artifact to write (required)"},
        {"scheme", 0, OPT_STR, &scheme, "SCHEME", "w8 or w4 (required)"},
        {"group", 0, OPT_INT, &group, "N", "w4: input features a scale (32, 64 or 128; default 128)"},
        {"asym", 0, OPT_FLAG, &asym, NULL, "w4: a zero point a group (asymmetric)"},
        {"method", 0, OPT_STR, &method, "M", "rtn (round to nearest; the default) or gptq"},
        {"calib", 0, OPT_STRS, &calib, "FILE[:TOKENS]", "gptq: calibration text (repeatable)"},
        {"calib-tokens", 0, OPT_INT, &calib_tokens, "N", "gptq: calibration tokens in all (default 32768)"},
        {"damp", 0, OPT_DOUBLE, &damp, "D", "gptq: Hessian dampening, a fraction of its mean diagonal (0.01)"},
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
    quant_recipe r = {{0, (int)group, asym}, method, NULL, 0, 256, damp};
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
    if (!err && !(kind == SMELT_SRC_HF_DIR || kind == SMELT_SRC_ARTIFACT))
        err = SMELT_ERR(SMELT_E_INVALID, "%s: quant takes a Hugging Face folder or a .smelt artifact", pos[0]);
    smelt_model *m = NULL;
    quant_report *rep = NULL;
    int n_rep = 0;
    if (!err) err = smelt_load_model(pos[0], true, &m);
    if (!err && (strcmp(method, "gptq") == 0 || w8a8)) {
        smelt_tokenizer *tok = NULL;
        if (!m->tokenizer_json) err = SMELT_ERR(SMELT_E_INVALID, "%s: no tokenizer.json to read the calibration text with", pos[0]);
        if (!err) err = smelt_tokenizer_load(m->tokenizer_json, strlen(m->tokenizer_json), "tokenizer.json", &tok);
        int32_t eos = m->llm.eos_id >= 0 ? m->llm.eos_id : tok ? smelt_tokenizer_token_id(tok, "<|endoftext|>") : -1;
        if (!err && calib.n == 0) err = SMELT_ERR(SMELT_E_INVALID, "gptq needs calibration text: --calib FILE[:TOKENS]");
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
        err = smelt_err_wrap(quantize_llm(m, &r, show_progress, &p, &rep, &n_rep), "%s", pos[0]);
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
            json_array_append_new(layers, json_pack("{s:s, s:i, s:i, s:f}", "tensor", rep[i].tensor, "bits", rep[i].bits, "group", rep[i].group, "rel_err",
                                                    rep[i].rel_err));
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:f, s:I, s:I, s:o}", "output", out, "scheme", scheme, "group", r.scheme.bits == 4 ? (int)group : 0,
                              "method", method, "bits_per_weight", bpw, "bytes_before", (json_int_t)before, "bytes_after", (json_int_t)after, "layers", layers);
        json_dumpf(o, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(o);
    } else {
        printf("%-52s %4s %6s %10s\n", "tensor", "bits", "group", "rel error");
        for (int i = 0; i < n_rep; i++) printf("%-52s %4d %6d %10.5f\n", rep[i].tensor, rep[i].bits, rep[i].group, rep[i].rel_err);
        printf("%s: %s (%s), %d weights, %.2f bits per weight with scales, %zu -> %zu bytes\n", out, name, method, n_rep, bpw, before, after);
    }
    quant_report_free(rep, n_rep);
    smelt_model_free(m);
    return 0;
}
