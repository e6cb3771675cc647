/* smelt report: a Markdown table and a quality-against-cost SVG chart of eval results. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/io.h"
#include "evals/jfield.h"
#include "evals/report.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "report",
    "Markdown table and quality-vs-cost SVG chart of eval results.",
    "smelt report RESULT.json... -o DIR",
    "Writes DIR/report.md (one row per result: worst-domain perplexity increase, per-domain\n"
    "perplexity, agreement, canaries, p95 latencies, cost per 1M tokens and per 1K requests) and\n"
    "DIR/quality_cost.svg (worst-domain perplexity increase against cost per 1M output tokens,\n"
    "Pareto front marked). Results without a cost (eval without --workload/--hardware) are in the\n"
    "table but not on the chart.",
};

static smelt_err *write_text(const char *dir, const char *name, char *text)
{
    if (!text) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    char *path = smelt_path_join(dir, name);
    smelt_err *err = path ? smelt_write_file_atomic(path, text, strlen(text)) : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    free(path);
    free(text);
    return err;
}

CMD(report)
{
    const char *dir = NULL;
    const cli_opt opts[] = {
        {"output", 'o', OPT_STR, &dir, "DIR", "folder to write report.md and quality_cost.svg into (required)"},
        {0},
    };
    const char *pos[256];
    int n, rc = cli_parse(&info, opts, argc, argv, pos, 1, 256, &n);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (!dir) {
        fprintf(stderr, "smelt report: missing -o DIR\nusage: %s\n", info.usage);
        return 2;
    }
    json_t *results[256] = {0};
    report_point *pts = NULL;
    smelt_err *err = NULL;
    for (int i = 0; !err && i < n; i++) err = jf_load(pos[i], &results[i]);
    if (!err) err = report_points(results, pos, n, &pts);
    if (!err && !smelt_is_dir(dir) && mkdir(dir, 0777) != 0) err = SMELT_ERR(SMELT_E_IO, "%s: cannot create the folder", dir);
    if (!err) {
        report_pareto(pts, n);
        err = write_text(dir, "quality_cost.svg", report_svg(pts, n));
    }
    if (!err) err = write_text(dir, "report.md", report_markdown(results, pos, pts, n, "quality_cost.svg"));
    if (!err) printf("%s/report.md, %s/quality_cost.svg: %d results\n", dir, dir, n);
    free(pts);
    for (int i = 0; i < n; i++) json_decref(results[i]);
    return err ? cli_fail("report", err) : 0;
}
