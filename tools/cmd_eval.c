/* smelt eval: measure an artifact on a suite (quality per domain, canaries), optionally replay a
 * workload against it and price it on a hardware profile; write the result JSON (docs/results.md). */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/io.h"
#include "core/log.h"
#include "evals/artifact_info.h"
#include "evals/cascade.h"
#include "evals/classify.h"
#include "evals/cost.h"
#include "evals/quality.h"
#include "evals/replay.h"
#include "evals/workload.h"
#include "tools/cli.h"
#include "tools/llm_open.h"

static const cli_cmd_info info = {
    "eval",
    "Measure an artifact on a suite, a workload and a hardware profile.",
    "smelt eval ARTIFACT --suite S.json [--workload W.json] [--hardware H.json] -o RESULT.json [--json]",
    "ARTIFACT is anything 'smelt run' opens (Hugging Face folder, .smelt artifact, ONNX decoder).\n"
    "The suite's domains are scored under the perplexity protocol, with KL divergence and top-1\n"
    "agreement against the suite's reference model on the same windows, and its canary prompts\n"
    "are decoded greedily and compared with the expected ids. A classifier suite (domains with\n"
    "\"task\": \"classify\") takes an ONNX graph or its .smelt artifact instead: accuracy on labelled\n"
    "examples (IDX or CSV) and agreement with the reference. --workload replays a workload profile\n"
    "against the engine (latency, throughput, memory); --hardware prices the measured (or the\n"
    "profile's own) throughput: cost per 1M input/output tokens, per request, monthly. The result\n"
    "JSON (schema in docs/results.md) carries the artifact's provenance; --json also prints it.",
};

static void now_utc(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

static smelt_err *open_eval_model(const char *path, llm_open_model *o, eval_model *em)
{
    SMELT_TRY(llm_open(path, o));
    *em = (eval_model){o->engine, o->tok, llm_eos_id(o)};
    if (em->eos_id < 0) return SMELT_ERR(SMELT_E_INVALID, "%s: no end-of-text token (config eos_token_id or '<|endoftext|>')", path);
    return NULL;
}

CMD(eval)
{
    const char *suite_path = NULL, *workload_path = NULL, *hardware_path = NULL, *out_path = NULL;
    bool json = false;
    const cli_opt opts[] = {
        {"suite", 's', OPT_STR, &suite_path, "S.json", "suite file (required)"},
        {"workload", 'w', OPT_STR, &workload_path, "W.json", "workload profile to replay"},
        {"hardware", 0, OPT_STR, &hardware_path, "H.json", "hardware profile to price on (needs --workload)"},
        {"output", 'o', OPT_STR, &out_path, "RESULT.json", "result file to write (required)"},
        {"json", 0, OPT_FLAG, &json, NULL, "also print the result JSON"},
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 1, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (!suite_path || !out_path) {
        fprintf(stderr, "smelt eval: missing %s\nusage: %s\n", !suite_path ? "--suite" : "-o RESULT.json", info.usage);
        return 2;
    }
    if (hardware_path && !workload_path) {
        fprintf(stderr, "smelt eval: --hardware prices a replayed workload, expected --workload too\nusage: %s\n", info.usage);
        return 2;
    }
    double t0 = smelt_now();
    eval_suite *suite = NULL;
    workload_profile *wl = NULL;
    hardware_profile *hw = NULL;
    llm_open_model cand = {0}, ref = {0};
    eval_model ecand, eref;
    bool self_ref = false;
    classify_model ccand = {0}, cref = {0};
    json_t *result = NULL, *artifact = NULL, *reference = NULL, *domains = NULL, *canaries = NULL, *workload = NULL, *cost = NULL;
    /* Every input file is checked before the slow part starts. */
    smelt_err *err = suite_load(suite_path, &suite);
    if (!err && workload_path) err = workload_load(workload_path, &wl);
    if (!err && hardware_path) err = hardware_load(hardware_path, &hw);
    bool classify = !err && suite->task == EVAL_TASK_CLASSIFY;
    if (classify && wl)
        err = SMELT_ERR(SMELT_E_INVALID, "%s: a classifier suite: --workload replays a language model's requests, expected no --workload", suite_path);
    /* Classifier suites: ONNX graphs through the graph executor, accuracy and agreement. */
    if (!err && classify) {
        err = classify_open(pos[0], &ccand);
        if (!err) err = artifact_describe_graph(pos[0], ccand.model, &artifact);
        if (!err && suite->reference) {
            self_ref = same_file(pos[0], suite->reference);
            if (!self_ref) err = smelt_err_wrap(classify_open(suite->reference, &cref), "%s: 'reference'", suite_path);
            if (!err) err = artifact_describe_graph(suite->reference, self_ref ? ccand.model : cref.model, &reference);
        }
        if (!err) err = classify_run(suite, &ccand, suite->reference ? (self_ref ? &ccand : &cref) : NULL, &domains);
        if (!err && !(canaries = json_array())) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    if (!err && !classify) err = open_eval_model(pos[0], &cand, &ecand);
    if (!err && !classify) err = artifact_describe(pos[0], cand.model, cand.engine, &artifact);
    if (!err && !classify && suite->reference) {
        self_ref = same_file(pos[0], suite->reference);
        if (self_ref) eref = ecand;
        else err = smelt_err_wrap(open_eval_model(suite->reference, &ref, &eref), "%s: 'reference'", suite_path);
        if (!err) err = artifact_describe(suite->reference, self_ref ? cand.model : ref.model, eref.engine, &reference);
    }
    if (!err && !classify) err = quality_run(suite, &ecand, suite->reference ? &eref : NULL, &domains, &canaries);
    if (!err && wl) err = replay_run(wl, ecand.engine, &workload);
    if (!err && hw) err = cost_run(hw, wl, workload, artifact, &cost);
    /* A cascade's blended cost needs the reference's own cost on the same workload and hardware. */
    if (!err && hw && suite->has_cascade && suite->reference) {
        json_t *ref_workload = NULL, *ref_cost = NULL;
        if (self_ref) ref_cost = json_incref(cost);
        else err = replay_run(wl, eref.engine, &ref_workload);
        if (!err && !ref_cost) err = cost_run(hw, wl, ref_workload, reference, &ref_cost);
        if (!err) {
            json_object_set_new(cost, "reference", json_pack("{s:O, s:O, s:O}", "usd_per_1m_input_tokens", json_object_get(ref_cost, "usd_per_1m_input_tokens"),
                                                             "usd_per_1m_output_tokens", json_object_get(ref_cost, "usd_per_1m_output_tokens"), "usd_per_request",
                                                             json_object_get(ref_cost, "usd_per_request")));
            json_object_set_new(cost, "cascade", cascade_blend(domains, cost, ref_cost));
        }
        json_decref(ref_workload);
        json_decref(ref_cost);
    }
    if (!err) {
        int passed = 0;
        size_t i;
        json_t *c;
        json_array_foreach(canaries, i, c) passed += json_is_true(json_object_get(c, "passed"));
        char created[32];
        now_utc(created);
        result = json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s}, s:o, s:o, s:o, s:o, s:o, s:o}", "schema", "smelt.eval.result/1", "smelt_version",
                           SMELT_VERSION, "command", cli_command_line ? cli_command_line : "", "created", created, "artifact", artifact, "suite", "path",
                           suite_path, "name", suite->name, "sha256", suite->sha256, "reference", reference ? reference : json_null(), "domains", domains,
                           "canaries", canaries, "canary_pass_rate",
                           json_array_size(canaries) ? json_real((double)passed / (double)json_array_size(canaries)) : json_null(), "workload",
                           workload ? workload : json_null(), "cost", cost ? cost : json_null());
        artifact = reference = domains = canaries = workload = cost = NULL;
        if (!result) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    if (!err) {
        json_object_set_new(result, "eval_seconds", json_real(smelt_now() - t0));
        char *text = json_dumps(result, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
        if (!text) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        else err = smelt_write_file_atomic(out_path, text, strlen(text));
        if (!err && json) printf("%s\n", text);
        free(text);
    }
    json_decref(result);
    json_decref(artifact);
    json_decref(reference);
    json_decref(domains);
    json_decref(canaries);
    json_decref(workload);
    json_decref(cost);
    if (!self_ref) llm_close(&ref);
    llm_close(&cand);
    classify_close(&cref);
    classify_close(&ccand);
    workload_free(wl);
    hardware_free(hw);
    suite_free(suite);
    return err ? cli_fail("eval", err) : 0;
}
