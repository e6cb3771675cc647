/* Markdown table and SVG chart of eval results (see report.h). The SVG is written as text: a
 * scatter plot with axes, ticks, units, point labels and the Pareto front joined by a line. */
#define _GNU_SOURCE /* open_memstream */
#include "evals/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
        }
    }
}

static void md_text(FILE *f, const char *s)
{
    for (; *s; s++) fputs(*s == '|' ? "\\|" : (char[]){*s, 0}, f);
}

static double num_at(const json_t *o, const char *a, const char *b, const char *c, bool *ok)
{
    const json_t *v = json_object_get(o, a);
    if (b) v = json_object_get(v, b);
    if (c) v = json_object_get(v, c);
    *ok = json_is_number(v);
    return json_number_value(v);
}

smelt_err *report_points(json_t *const *results, const char *const *paths, int n, report_point **pts)
{
    report_point *p = calloc((size_t)n, sizeof *p);
    if (!p) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const json_t *r = results[i], *doms = json_object_get(r, "domains");
        const char *label = json_string_value(json_object_get(json_object_get(r, "artifact"), "path"));
        if (!json_is_object(doms) || !label) {
            free(p);
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: expected a smelt eval result ('artifact.path' and 'domains')", paths[i]);
        }
        p[i].label = label;
        p[i].worst_ppl = -INFINITY;
        const char *dn;
        json_t *d;
        json_object_foreach((json_t *)doms, dn, d)
        {
            bool ok;
            double v = num_at(d, "ppl_increase_pct", NULL, NULL, &ok);
            if (ok && v > p[i].worst_ppl) {
                p[i].worst_ppl = v;
                p[i].worst_domain = dn;
            }
        }
        if (!p[i].worst_domain) {
            free(p);
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: no domain has 'ppl_increase_pct' (a suite with a reference model measures it)", paths[i]);
        }
        bool ok;
        p[i].usd_out_1m = num_at(r, "cost", "usd_per_1m_output_tokens", NULL, &ok);
        p[i].has_cost = ok && p[i].usd_out_1m > 0;
    }
    *pts = p;
    return NULL;
}

void report_pareto(report_point *p, int n)
{
    for (int i = 0; i < n; i++) {
        p[i].pareto = p[i].has_cost;
        for (int j = 0; j < n && p[i].pareto; j++) {
            if (j == i || !p[j].has_cost) continue;
            bool no_worse = p[j].usd_out_1m <= p[i].usd_out_1m && p[j].worst_ppl <= p[i].worst_ppl;
            bool better = p[j].usd_out_1m < p[i].usd_out_1m || p[j].worst_ppl < p[i].worst_ppl;
            if (no_worse && better) p[i].pareto = false;
        }
    }
}

static void md_num(FILE *f, const json_t *o, const char *a, const char *b, const char *c, const char *fmt)
{
    bool ok;
    double v = num_at(o, a, b, c, &ok);
    fputs(" | ", f);
    if (ok) fprintf(f, fmt, v);
    else fputs("—", f);
}

char *report_markdown(json_t *const *results, const char *const *paths, const report_point *p, int n, const char *svg_name)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fprintf(f, "# smelt report\n\n%d result%s. Perplexity increase is against each suite's reference model on the same windows; cost is the expected "
               "scenario of the result's hardware profile.\n\n",
            n, n == 1 ? "" : "s");
    fputs("| artifact | suite | worst domain | worst ppl increase % | domains (ppl) | min top-1 | max KL | canaries | TTFT p95 ms | ITL p95 ms | $ / 1M in | $ / 1M out "
          "| $ / 1K req | hardware | Pareto |\n|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
          f);
    for (int i = 0; i < n; i++) {
        const json_t *r = results[i];
        fputs("| ", f);
        md_text(f, p[i].label);
        fputs(" | ", f);
        const char *suite = json_string_value(json_object_get(json_object_get(r, "suite"), "name"));
        md_text(f, suite ? suite : "?");
        fputs(" | ", f);
        md_text(f, p[i].worst_domain);
        fprintf(f, " | %+.3f | ", p[i].worst_ppl);
        double min_top1 = INFINITY, max_kl = -INFINITY;
        const char *dn;
        json_t *d;
        int k = 0;
        json_object_foreach(json_object_get(r, "domains"), dn, d)
        {
            bool ok;
            fprintf(f, "%s", k++ ? ", " : "");
            md_text(f, dn);
            fprintf(f, " %.3f", json_number_value(json_object_get(d, "ppl")));
            double t = num_at(d, "top1", NULL, NULL, &ok);
            if (ok && t < min_top1) min_top1 = t;
            double kl = num_at(d, "kl", NULL, NULL, &ok);
            if (ok && kl > max_kl) max_kl = kl;
        }
        if (isfinite(min_top1)) fprintf(f, " | %.4f", min_top1);
        else fputs(" | —", f);
        if (isfinite(max_kl)) fprintf(f, " | %.3g", max_kl);
        else fputs(" | —", f);
        md_num(f, r, "canary_pass_rate", NULL, NULL, "%.2f");
        md_num(f, r, "workload", "ttft_ms", "p95", "%.1f");
        md_num(f, r, "workload", "itl_ms", "p95", "%.2f");
        md_num(f, r, "cost", "usd_per_1m_input_tokens", NULL, "%.4g");
        md_num(f, r, "cost", "usd_per_1m_output_tokens", NULL, "%.4g");
        md_num(f, r, "cost", "usd_per_1k_requests", NULL, "%.4g");
        const char *hw = json_string_value(json_object_get(json_object_get(json_object_get(r, "cost"), "hardware"), "name"));
        fputs(" | ", f);
        md_text(f, hw ? hw : "—");
        fprintf(f, " | %s |\n", p[i].pareto ? "yes" : p[i].has_cost ? "" : "no cost");
    }
    fprintf(f, "\n![quality against cost](%s)\n\nSources: ", svg_name);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", " : "", f);
        md_text(f, paths[i]);
    }
    fputs(".\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* "Nice" tick step for a span: 1, 2 or 5 times a power of ten, about 5 ticks. */
static double tick_step(double span)
{
    double raw = span / 5, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

static int by_cost(const void *a, const void *b)
{
    const report_point *x = *(report_point *const *)a, *y = *(report_point *const *)b;
    return x->usd_out_1m < y->usd_out_1m ? -1 : x->usd_out_1m > y->usd_out_1m;
}

char *report_svg(const report_point *p, int n)
{
    const double W = 760, H = 480, L = 90, R = 30, T = 50, B = 70;
    double xmin = INFINITY, xmax = -INFINITY, ymin = 0, ymax = -INFINITY;
    int nc = 0;
    for (int i = 0; i < n; i++) {
        if (!p[i].has_cost) continue;
        nc++;
        xmin = fmin(xmin, p[i].usd_out_1m);
        xmax = fmax(xmax, p[i].usd_out_1m);
        ymin = fmin(ymin, p[i].worst_ppl);
        ymax = fmax(ymax, p[i].worst_ppl);
    }
    bool logx = nc > 0 && xmax / xmin > 20;
    if (nc == 0) xmin = 0, xmax = 1, ymax = 1;
    double x0 = logx ? floor(log10(xmin)) : 0, x1 = logx ? ceil(log10(xmax)) : ceil(xmax * 1.1 / tick_step(xmax * 1.1)) * tick_step(xmax * 1.1);
    if (x1 <= x0) x1 = x0 + 1;
    if (ymax <= ymin) ymax = ymin + 1;
    double ystep = tick_step(ymax - ymin), y0 = floor(ymin / ystep) * ystep, y1 = ceil(ymax * 1.1 / ystep) * ystep;
    if (y1 <= y0) y1 = y0 + ystep;
#define PX(v) (L + ((logx ? log10(v) : (v)) - x0) / (x1 - x0) * (W - L - R))
#define PY(v) (H - B - ((v) - y0) / (y1 - y0) * (H - T - B))
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W,
            H, W, H);
    fprintf(f, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">Quality against cost (lower left is better)</text>\n", W / 2);
    /* axes, grid and ticks */
    fprintf(f, "<g stroke=\"#888\" stroke-width=\"1\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>\n", L,
            H - B, W - R, H - B, L, T, L, H - B);
    for (double y = y0; y <= y1 + ystep / 1e6; y += ystep) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", L, PY(y), W - R, PY(y));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6, PY(y) + 4, fabs(y) < ystep / 1e6 ? 0 : y);
    }
    if (logx) {
        for (double e = x0; e <= x1 + 0.5; e += 1) {
            double v = pow(10, e);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", PX(v), T, PX(v), H - B);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(v), H - B + 18, v);
        }
    } else {
        double xs = tick_step(x1 - x0);
        for (double x = x0; x <= x1 + xs / 1e6; x += xs) {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", PX(x), T, PX(x), H - B);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(x), H - B + 18, x);
        }
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">cost per 1M output tokens (USD, expected scenario%s)</text>\n", (L + W - R) / 2, H - 22,
            logx ? ", log scale" : "");
    fprintf(f, "<text transform=\"translate(22 %.1f) rotate(-90)\" text-anchor=\"middle\">worst-domain perplexity increase (%%)</text>\n", (T + H - B) / 2);
    /* Pareto front, cheapest first */
    report_point const **front = malloc((size_t)(n + 1) * sizeof *front);
    int nf = 0;
    for (int i = 0; front && i < n; i++)
        if (p[i].pareto) front[nf++] = &p[i];
    if (front) qsort(front, (size_t)nf, sizeof *front, by_cost);
    if (nf > 1) {
        fputs("<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" points=\"", f);
        for (int i = 0; i < nf; i++) fprintf(f, "%.1f,%.1f ", PX(front[i]->usd_out_1m), PY(front[i]->worst_ppl));
        fputs("\"/>\n", f);
    }
    free(front);
    for (int i = 0; i < n; i++) {
        if (!p[i].has_cost) continue;
        double cx = PX(p[i].usd_out_1m), cy = PY(p[i].worst_ppl);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\" stroke=\"#d62728\" stroke-width=\"2\"><title>", cx, cy, p[i].pareto ? "#d62728" : "white");
        xml_text(f, p[i].label);
        fprintf(f, ": %+.3f%% worst ppl (%s), $%.4g / 1M output tokens</title></circle>\n", p[i].worst_ppl, p[i].worst_domain, p[i].usd_out_1m);
        bool right = cx > L + (W - L - R) * 0.6; /* labels of points on the right go to their left */
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\"%s>", right ? cx - 9 : cx + 9, cy - 8, right ? " text-anchor=\"end\"" : "");
        xml_text(f, p[i].label);
        fputs("</text>\n", f);
    }
    fprintf(f, "<g transform=\"translate(%.0f %.0f)\"><circle cx=\"0\" cy=\"0\" r=\"6\" fill=\"#d62728\"/><text x=\"10\" y=\"4\">Pareto front</text>", W - R - 200, T + 10);
    fputs("<circle cx=\"0\" cy=\"20\" r=\"6\" fill=\"white\" stroke=\"#d62728\" stroke-width=\"2\"/><text x=\"10\" y=\"24\">dominated</text></g>\n", f);
    int nocost = n - nc;
    if (nocost) fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" fill=\"#666\">%d result(s) without a cost (eval with --workload and --hardware) not plotted</text>\n", L, H - 4, nocost);
    fputs("</svg>\n", f);
#undef PX
#undef PY
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
