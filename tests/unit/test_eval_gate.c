/* The gate and the report on hand-made results: limits, baselines, overrides, missing numbers,
 * XML escaping in the JUnit output, the Pareto front, and quantiles. Expected values are worked
 * out by hand in the comments. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "evals/gate.h"
#include "evals/report.h"
#include "evals/stats.h"

static char policy_path[64];

/* Loads text as a policy file; on failure *msg (when given) gets a copy of the error message. */
static gate_policy *policy_from_msg(const char *text, char **msg)
{
    snprintf(policy_path, sizeof policy_path, "/tmp/smelt_gate_test_%d.json", (int)getpid());
    FILE *f = fopen(policy_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    gate_policy *p = NULL;
    smelt_err *err = policy_load(policy_path, &p);
    unlink(policy_path);
    if (err) {
        if (msg) *msg = strdup(smelt_err_msg(err));
        else fprintf(stderr, "%s\n", smelt_err_msg(err));
        smelt_err_free(err);
        return NULL;
    }
    return p;
}

static gate_policy *policy_from(const char *text) { return policy_from_msg(text, NULL); }

/* The policy fails to load with a message holding `want` after the file name. */
static void expect_policy_error(const char *text, const char *want)
{
    char *msg = NULL;
    assert_null(policy_from_msg(text, &msg));
    assert_non_null(msg);
    if (!strstr(msg, want)) fail_msg("message '%s' lacks '%s'", msg, want);
    assert_int_equal(strncmp(msg, policy_path, strlen(policy_path)), 0);
    free(msg);
}

static void limits_and_baseline(void **state)
{
    (void)state;
    gate_policy *p = policy_from("{\"name\": \"p\", \"checks\": {\"max_ppl_increase_pct\": 1, \"min_top1\": 0.9}, "
                                 "\"domains\": {\"b\": {\"max_ppl_increase_pct\": 5}}}");
    assert_non_null(p);
    json_t *res = json_loads("{\"domains\": {\"a\": {\"ppl\": 10.2, \"reference_ppl\": 10, \"top1\": 0.95, \"windows\": 4, \"file\": \"x/a.txt\"},"
                             " \"b\": {\"ppl\": 10.4, \"reference_ppl\": 10, \"top1\": 0.85, \"windows\": 4, \"file\": \"x/b.txt\"}}}",
                             0, NULL);
    gate_check *c;
    int n;
    assert_null(gate_evaluate(p, res, "r.json", NULL, NULL, &c, &n));
    assert_int_equal(n, 4);
    /* a: +2% > 1% fails; top1 0.95 passes. b: +4% <= 5% (override) passes; top1 0.85 fails */
    assert_string_equal(c[0].domain, "a");
    assert_string_equal(c[0].metric, "ppl_increase_pct");
    assert_true(fabs(c[0].value - 2.0) < 1e-9);
    assert_false(c[0].pass);
    assert_true(c[1].pass);
    assert_true(fabs(c[2].value - 4.0) < 1e-9);
    assert_true(fabs(c[2].limit - 5.0) < 1e-12);
    assert_true(c[2].pass);
    assert_false(c[3].pass);
    free(c);
    /* against a baseline with ppl 10.3 on a: +0.971% passes; delta of top1 = 0.95 - 0.97 */
    json_t *base = json_loads("{\"domains\": {\"a\": {\"ppl\": 10.3, \"top1\": 0.97, \"windows\": 4, \"file\": \"y/a.txt\"},"
                              " \"b\": {\"ppl\": 10.4, \"top1\": 0.85, \"windows\": 4, \"file\": \"y/b.txt\"}}}",
                              0, NULL);
    assert_null(gate_evaluate(p, res, "r.json", base, "b.json", &c, &n));
    assert_true(fabs(c[0].value - (10.2 / 10.3 - 1) * 100) < 1e-9);
    assert_true(c[0].pass);
    assert_true(c[1].has_baseline);
    assert_true(fabs(c[1].delta - (0.95 - 0.97)) < 1e-12);
    assert_true(fabs(c[2].value) < 1e-12); /* b equals its baseline */
    free(c);
    /* a baseline measured on other windows is an error, not a verdict */
    json_object_set_new(json_object_get(json_object_get(base, "domains"), "a"), "windows", json_integer(8));
    smelt_err *err = gate_evaluate(p, res, "r.json", base, "b.json", &c, &n);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "expected the same suite"));
    smelt_err_free(err);
    json_decref(base);
    json_decref(res);
    policy_free(p);
}

static void missing_numbers_fail(void **state)
{
    (void)state;
    gate_policy *p = policy_from("{\"name\": \"p\", \"checks\": {\"max_kl\": 0.1, \"max_usd_per_1m_output_tokens\": 2}, \"domains\": {\"legal\": {\"max_kl\": 1}}}");
    assert_non_null(p);
    json_t *res = json_loads("{\"domains\": {\"a\": {\"ppl\": 10}}, \"cost\": {\"usd_per_1m_output_tokens\": 1.5}}", 0, NULL);
    gate_check *c;
    int n;
    assert_null(gate_evaluate(p, res, "r.json", NULL, NULL, &c, &n));
    assert_int_equal(n, 3); /* a kl (not measured), legal (absent), cost (1.5 <= 2) */
    assert_false(c[0].measured);
    assert_false(c[0].pass);
    assert_string_equal(c[1].domain, "legal");
    assert_false(c[1].pass);
    assert_string_equal(c[2].metric, "usd_per_1m_output_tokens");
    assert_true(c[2].pass);
    free(c);
    json_decref(res);
    policy_free(p);
}

static void bad_policies(void **state)
{
    (void)state;
    expect_policy_error("{\"name\": \"p\", \"checks\": {\"min_top1\": 2}}", ": 'checks.min_top1': expected a number from 0 to 1, found 2");
    expect_policy_error("{\"name\": \"p\", \"checks\": {\"max_kl\": null}}", ": 'checks.max_kl': expected a number from 0 to 1e+09, found null");
    expect_policy_error("{\"checks\": {\"max_kl\": 1}}", ": 'name': missing, expected a string");
    expect_policy_error("{\"name\": \"p\", \"checks\": {\"max_kl\": 1}, \"domains\": {\"a\": 3}}", ": 'domains.a': expected an object of limits, found a number");
    expect_policy_error("{\"name\": \"p\", \"checks\": {\"max_kl\": 1}, \"checks\": {}}", "line 1");
}

static void junit_escapes(void **state)
{
    (void)state;
    gate_check c = {0};
    snprintf(c.domain, sizeof c.domain, "a<b>&\"c'");
    snprintf(c.metric, sizeof c.metric, "kl");
    c.measured = true;
    c.value = 0.5;
    c.limit = 0.1;
    c.is_max = true;
    snprintf(c.detail, sizeof c.detail, "x\001y");
    char *x = gate_junit("p&q", "m<1>", &c, 1);
    assert_non_null(x);
    assert_non_null(strstr(x, "classname=\"smelt.gate.a&lt;b&gt;&amp;&quot;c&apos;\""));
    assert_non_null(strstr(x, "<testsuite name=\"p&amp;q\""));
    assert_non_null(strstr(x, "value=\"m&lt;1&gt;\""));
    assert_non_null(strstr(x, "limit &lt;= 0.1"));
    assert_null(strchr(x, '\001')); /* control characters are not allowed in XML 1.0 */
    assert_int_equal((int)(strstr(x, "failures=\"1\"") != NULL), 1);
    free(x);
    char *md = gate_markdown("p", "a|b", &c, 1);
    assert_non_null(strstr(md, "a\\|b"));
    free(md);
}

static void pareto_and_quantiles(void **state)
{
    (void)state;
    /* (cost, worst ppl): A (1, 5) and B (2, 1) are on the front; C (3, 2) is dominated by B; D has no cost */
    report_point p[4] = {{"A", 5, "x", true, 1, false}, {"B", 1, "x", true, 2, false}, {"C", 2, "x", true, 3, false}, {"D", 0, "x", false, 0, false}};
    report_pareto(p, 4);
    assert_true(p[0].pareto);
    assert_true(p[1].pareto);
    assert_false(p[2].pareto);
    assert_false(p[3].pareto);
    char *svg = report_svg(p, 4);
    assert_non_null(strstr(svg, "<polyline"));
    assert_non_null(strstr(svg, "1 result(s) without a cost"));
    free(svg);
    /* quantiles by linear interpolation: of 1..5, p50 = 3, p95 = 4.8 */
    double x[5] = {5, 3, 1, 4, 2};
    assert_true(fabs(stats_quantile(x, 5, 0.5) - 3) < 1e-12);
    assert_true(fabs(stats_quantile(x, 5, 0.95) - 4.8) < 1e-12);
    assert_true(stats_quantile(x, 0, 0.5) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limits_and_baseline), cmocka_unit_test(missing_numbers_fail), cmocka_unit_test(bad_policies),
        cmocka_unit_test(junit_escapes),       cmocka_unit_test(pareto_and_quantiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
