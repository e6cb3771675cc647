/* smelt gate: pass or fail an eval result against a release policy. Exit 0 pass, 1 fail, 2 error. */
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "evals/gate.h"
#include "evals/jfield.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "gate",
    "Pass or fail an eval result against a release policy.",
    "smelt gate RESULT.json --policy P.json [--baseline BASE.json] [--junit OUT.xml] [--markdown OUT.md] [--json]",
    "Checks every limit of the policy (per domain: perplexity increase, KL, top-1 agreement; per\n"
    "artifact: canary pass rate, p95 latencies, cost per 1M tokens) against RESULT.json, written by\n"
    "'smelt eval'. Perplexity increase is against BASE.json's perplexity on the same domain (an eval\n"
    "of the baseline with the same suite) when given, else against the suite's reference model on\n"
    "the same windows. Prints one line per check. Exit 0 when all pass, 1 when any fails, 2 on an\n"
    "error (unreadable or malformed files, a baseline from another suite). --junit writes one\n"
    "testcase per check, --markdown a summary table, --json prints the checks as JSON.",
};

static smelt_err *write_text(const char *path, char *text)
{
    if (!text) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_err *err = smelt_write_file_atomic(path, text, strlen(text));
    free(text);
    return err;
}

static json_t *checks_json(const gate_check *c, int n, bool pass)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:b, s:f, s:s, s:b, s:s}", "domain", c[i].domain, "metric", c[i].metric, "measured", c[i].measured, "limit",
                              c[i].limit, "kind", c[i].is_max ? "max" : "min", "pass", c[i].pass, "detail", c[i].detail);
        if (c[i].measured) json_object_set_new(o, "value", json_real(c[i].value));
        if (c[i].has_baseline) {
            json_object_set_new(o, "baseline", json_real(c[i].baseline));
            json_object_set_new(o, "delta", json_real(c[i].delta));
        }
        json_array_append_new(arr, o);
    }
    return json_pack("{s:b, s:o}", "pass", pass, "checks", arr);
}

CMD(gate)
{
    const char *policy_path = NULL, *baseline_path = NULL, *junit = NULL, *md = NULL;
    bool json = false;
    const cli_opt opts[] = {
        {"policy", 'p', OPT_STR, &policy_path, "P.json", "policy file (required)"},
        {"baseline", 'b', OPT_STR, &baseline_path, "BASE.json", "eval result of the baseline (same suite)"},
        {"junit", 0, OPT_STR, &junit, "OUT.xml", "write a JUnit XML report"},
        {"markdown", 0, OPT_STR, &md, "OUT.md", "write a Markdown summary"},
        {"json", 0, OPT_FLAG, &json, NULL, "print the checks as JSON instead of lines"},
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 1, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (!policy_path) {
        fprintf(stderr, "smelt gate: missing --policy\nusage: %s\n", info.usage);
        return 2;
    }
    gate_policy *p = NULL;
    json_t *result = NULL, *baseline = NULL;
    gate_check *checks = NULL;
    int n = 0;
    smelt_err *err = policy_load(policy_path, &p);
    if (!err) err = jf_load(pos[0], &result);
    if (!err && baseline_path) err = jf_load(baseline_path, &baseline);
    if (!err) err = gate_evaluate(p, result, pos[0], baseline, baseline_path, &checks, &n);
    int failures = 0;
    for (int i = 0; i < n; i++) failures += !checks[i].pass;
    const char *artifact = json_string_value(json_object_get(json_object_get(result, "artifact"), "path"));
    if (!artifact) artifact = pos[0];
    if (!err && junit) err = write_text(junit, gate_junit(policy_name(p), artifact, checks, n));
    if (!err && md) err = write_text(md, gate_markdown(policy_name(p), artifact, checks, n));
    if (!err) {
        if (json) {
            json_t *j = checks_json(checks, n, failures == 0);
            json_dumpf(j, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
            printf("\n");
            json_decref(j);
        } else {
            for (int i = 0; i < n; i++) {
                char line[768];
                gate_check_line(&checks[i], line, sizeof line);
                printf("%s\n", line);
            }
            printf("%s: %d of %d checks passed (policy '%s')\n", failures ? "FAIL" : "PASS", n - failures, n, policy_name(p));
        }
    }
    free(checks);
    json_decref(result);
    json_decref(baseline);
    policy_free(p);
    if (err) {
        cli_fail("gate", err);
        return 2; /* an error, not a failed gate */
    }
    return failures ? 1 : 0;
}
