/* What the gate writes: JUnit XML (one testcase per check, so a CI system lists which domain
 * failed and by how much), a Markdown summary and one-line summaries for the terminal. */
#define _GNU_SOURCE /* open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evals/gate.h"

/* Text as XML character data or attribute value: the five special characters escaped, control
 * characters other than tab/newline (invalid in XML 1.0) replaced by '?'. */
static void xml_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(ch < 0x20 && ch != '\t' && ch != '\n' ? '?' : ch, f);
        }
    }
}

/* Markdown table cells: '|' and newlines would break the row. */
static void md_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    }
}

static const char *check_domain(const gate_check *c) { return c->domain[0] ? c->domain : "artifact"; }

void gate_check_line(const gate_check *c, char *buf, size_t n)
{
    if (!c->measured) {
        snprintf(buf, n, "%s %s FAIL: %s (limit %s %g)", check_domain(c), c->metric, c->detail, c->is_max ? "<=" : ">=", c->limit);
        return;
    }
    char delta[64] = "";
    if (c->has_baseline) snprintf(delta, sizeof delta, ", delta %+.6g vs baseline %.6g", c->delta, c->baseline);
    snprintf(buf, n, "%s %s %s: measured %.6g, limit %s %g%s (%s)", check_domain(c), c->metric, c->pass ? "pass" : "FAIL", c->value, c->is_max ? "<=" : ">=",
             c->limit, delta, c->detail);
}

char *gate_junit(const char *policy, const char *artifact, const gate_check *c, int n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int failures = 0;
    for (int i = 0; i < n; i++) failures += !c[i].pass;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"smelt gate\" tests=\"%d\" failures=\"%d\">\n", n, failures);
    fputs("  <testsuite name=\"", f);
    xml_escaped(f, policy);
    fprintf(f, "\" tests=\"%d\" failures=\"%d\" errors=\"0\">\n    <properties><property name=\"artifact\" value=\"", n, failures);
    xml_escaped(f, artifact);
    fputs("\"/></properties>\n", f);
    for (int i = 0; i < n; i++) {
        char line[768];
        gate_check_line(&c[i], line, sizeof line);
        fputs("    <testcase classname=\"smelt.gate.", f);
        xml_escaped(f, check_domain(&c[i]));
        fputs("\" name=\"", f);
        xml_escaped(f, check_domain(&c[i]));
        fputc(' ', f);
        xml_escaped(f, c[i].metric);
        fputs("\">", f);
        if (!c[i].pass) {
            fputs("\n      <failure message=\"", f);
            xml_escaped(f, line);
            fputs("\" type=\"policy\">", f);
            xml_escaped(f, line);
            fputs("</failure>\n    ", f);
        } else {
            fputs("<system-out>", f);
            xml_escaped(f, line);
            fputs("</system-out>", f);
        }
        fputs("</testcase>\n", f);
    }
    fputs("  </testsuite>\n</testsuites>\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *gate_markdown(const char *policy, const char *artifact, const gate_check *c, int n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int failures = 0;
    for (int i = 0; i < n; i++) failures += !c[i].pass;
    fputs("# smelt gate: ", f);
    md_escaped(f, artifact);
    fprintf(f, "\n\n**%s**: %d of %d checks passed under policy '", failures ? "FAIL" : "PASS", n - failures, n);
    md_escaped(f, policy);
    fputs("'.\n\n| domain | metric | measured | baseline | delta | limit | result | how |\n|---|---|---:|---:|---:|---:|---|---|\n", f);
    for (int i = 0; i < n; i++) {
        fputs("| ", f);
        md_escaped(f, check_domain(&c[i]));
        fprintf(f, " | %s | ", c[i].metric);
        if (c[i].measured) fprintf(f, "%.6g", c[i].value);
        else fputs("—", f);
        if (c[i].has_baseline) fprintf(f, " | %.6g | %+.6g", c[i].baseline, c[i].delta);
        else fputs(" | — | —", f);
        fprintf(f, " | %s %g | %s | ", c[i].is_max ? "≤" : "≥", c[i].limit, c[i].pass ? "pass" : "**FAIL**");
        md_escaped(f, c[i].detail);
        fputs(" |\n", f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
