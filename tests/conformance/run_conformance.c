/* ONNX backend conformance runner for the graph executor (runtime/graph/).
 *
 * Walks DIR/ *\/ (default: Debian's libonnx-testdata node tests): imports model.onnx, plans it,
 * and for every test_data_set_N feeds input_K.pb and compares each output_K.pb with the ONNX
 * backend runner's tolerances (rtol 1e-3, atol 1e-7 for floats, NaN equals NaN; exact dtype, shape
 * and values for integers and bools). Each test is one of:
 *   pass         every output of every data set matched
 *   fail         it ran and gave a wrong answer, or failed with an error other than "unsupported"
 *   unsupported  the importer or the executor refused it cleanly (SMELT_E_UNSUPPORTED)
 *
 * Usage: run_conformance [--data DIR] [--report FILE] [--claimed FILE] [--write-claimed FILE] [-v] [NAME...]
 *   --report FILE         one line per test (status, op, reason), then the per-op table
 *   --claimed FILE        test names (one a line, '#' comments) that must pass: exit 1 if any does not
 *   --write-claimed FILE  writes the names of the tests that pass today
 *   NAME...               run only these tests (directory names)
 * Prints per-op results and a closing line "N passed, M failed, K unsupported" plus the ops no test
 * could run. Exit status: 1 when a claimed test fails, 2 on usage errors, else 0.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ir.h"
#include "formats/onnx.h"
#include "runtime/graph/graph_exec.h"

enum { ST_PASS, ST_FAIL, ST_UNSUP };
static const char *const st_names[] = {"pass", "fail", "unsupported"};

typedef struct {
    char *name;
    char *op;
    int status;
    char *why;
} result;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names of the subfolders of dir starting with prefix (NULL on failure). */
static char **list_dir(const char *dir, const char *prefix, int *n)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **v = NULL;
    int cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) break;
            v = nv;
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (v) qsort(v, (size_t)*n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static char *fmt(const char *f, const char *a, const char *b)
{
    size_t n = strlen(f) + strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, f, a, b);
    return s;
}

static double elem(const smelt_tensor *t, int64_t k)
{
    switch (t->dtype) {
    case SMELT_DT_F32: return ((const float *)t->data)[k];
    case SMELT_DT_F64: return ((const double *)t->data)[k];
    case SMELT_DT_F16: return smelt_f16_to_f32(((const uint16_t *)t->data)[k]);
    case SMELT_DT_BF16: return smelt_bf16_to_f32(((const uint16_t *)t->data)[k]);
    default: return 0;
    }
}

/* NULL when got matches want; otherwise a malloc'd description of the first difference. */
static char *compare(const smelt_tensor *got, const smelt_tensor *want, int k)
{
    char buf[400], s1[160], s2[160];
    if (got->dtype != want->dtype) {
        snprintf(buf, sizeof buf, "output %d: dtype %s, expected %s", k, smelt_dtype_name(got->dtype), smelt_dtype_name(want->dtype));
        return strdup(buf);
    }
    bool same = got->ndim == want->ndim;
    for (int d = 0; same && d < got->ndim; d++) same = got->shape[d] == want->shape[d];
    if (!same) {
        snprintf(buf, sizeof buf, "output %d: shape %s, expected %s", k, smelt_shape_str(got->ndim, got->shape, s1, sizeof s1),
                 smelt_shape_str(want->ndim, want->shape, s2, sizeof s2));
        return strdup(buf);
    }
    int64_t n = smelt_shape_numel(want->ndim, want->shape);
    if (smelt_dtype_traits(want->dtype)->is_float) {
        for (int64_t i = 0; i < n; i++) {
            double g = elem(got, i), w = elem(want, i);
            if (isnan(g) && isnan(w)) continue;
            if (g == w) continue; /* equal infinities */
            if (!(fabs(g - w) <= 1e-7 + 1e-3 * fabs(w))) {
                snprintf(buf, sizeof buf, "output %d: element %lld is %.9g, expected %.9g", k, (long long)i, g, w);
                return strdup(buf);
            }
        }
        return NULL;
    }
    if (got->nbytes != want->nbytes || (want->nbytes && memcmp(got->data, want->data, want->nbytes) != 0)) {
        int es = smelt_dtype_traits(want->dtype)->bits / 8;
        int64_t i = 0;
        while (es > 0 && i < n && memcmp((const char *)got->data + i * es, (const char *)want->data + i * es, (size_t)es) == 0) i++;
        snprintf(buf, sizeof buf, "output %d: element %lld differs (%s)", k, (long long)i, smelt_dtype_name(want->dtype));
        return strdup(buf);
    }
    return NULL;
}

/* Runs one data set; returns the status and sets *why (malloc'd) unless it passed. */
static int run_set(smelt_graph *g, const smelt_model *m, const char *setdir, char **why)
{
    smelt_model *io = smelt_model_new(SMELT_KIND_GRAPH, "test");
    if (!io) return *why = strdup("out of memory"), ST_FAIL;
    int n_in = 0, status = ST_PASS;
    smelt_tensor *ins = calloc((size_t)m->n_inputs + 1, sizeof *ins);
    smelt_err *err = NULL;
    for (int i = 0; i < m->n_inputs && !err; i++) {
        char file[64];
        snprintf(file, sizeof file, "input_%d.pb", i);
        char *path = fmt("%s/%s", setdir, file);
        if (!smelt_file_exists(path)) {
            free(path);
            break; /* trailing optional inputs left out */
        }
        smelt_tensor *t = NULL;
        err = onnx_read_tensor_pb(path, io, m->inputs[i].name, &t);
        free(path);
        /* Older test data stores bfloat16 tensors as uint16: same bits, relabelled. */
        if (!err && t->dtype == SMELT_DT_U16 && m->inputs[i].dtype == SMELT_DT_BF16) t->dtype = SMELT_DT_BF16;
        if (!err) ins[n_in++] = *t;
    }
    smelt_tensor *outs = NULL;
    int n_out = 0;
    if (!err) err = smelt_graph_run(g, ins, n_in, &outs, &n_out);
    if (err) {
        status = smelt_err_kind_of(err) == SMELT_E_UNSUPPORTED ? ST_UNSUP : ST_FAIL;
        *why = strdup(smelt_err_msg(err));
        smelt_err_free(err);
    }
    for (int k = 0; status == ST_PASS && k < n_out; k++) {
        char file[64], name[64];
        snprintf(file, sizeof file, "output_%d.pb", k);
        snprintf(name, sizeof name, "expected_%d", k);
        char *path = fmt("%s/%s", setdir, file);
        smelt_tensor *want = NULL;
        if (!smelt_file_exists(path)) {
            free(path);
            break;
        }
        err = onnx_read_tensor_pb(path, io, name, &want);
        free(path);
        if (err) {
            status = smelt_err_kind_of(err) == SMELT_E_UNSUPPORTED ? ST_UNSUP : ST_FAIL;
            *why = strdup(smelt_err_msg(err));
            smelt_err_free(err);
            break;
        }
        if (want->dtype == SMELT_DT_U16 && outs[k].dtype == SMELT_DT_BF16) want->dtype = SMELT_DT_BF16;
        *why = compare(&outs[k], want, k);
        if (*why) status = ST_FAIL;
    }
    smelt_graph_outputs_free(outs, n_out);
    free(ins);
    smelt_model_free(io);
    return status;
}

/* The op a test exercises: the node whose op, lowercased, starts the test's name; else the first. */
static const char *test_op(const smelt_model *m, const char *test)
{
    const char *t = strncmp(test, "test_", 5) == 0 ? test + 5 : test;
    const char *best = m->n_nodes ? m->nodes[0].op : "?";
    size_t best_len = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const char *op = m->nodes[i].op;
        size_t k = 0;
        while (op[k] && t[k]) {
            char a = op[k] >= 'A' && op[k] <= 'Z' ? (char)(op[k] - 'A' + 'a') : op[k];
            if (a != t[k]) break;
            k++;
        }
        if (!op[k] && k > best_len) best = op, best_len = k;
    }
    return best;
}

static void run_test(const char *dir, const char *name, result *r, char ***unsup_ops, int *n_unsup_ops)
{
    char *mdir = fmt("%s/%s", dir, name);
    char *path = fmt("%s/%s", mdir, "model.onnx");
    r->name = strdup(name);
    r->op = strdup("?");
    smelt_model *m = NULL;
    smelt_err *err = onnx_read(path, &m);
    smelt_graph *g = NULL;
    if (!err) {
        free(r->op);
        r->op = strdup(test_op(m, name));
        for (int i = 0; i < m->n_nodes; i++) {
            const char *op = m->nodes[i].op;
            if (smelt_graph_op_supported(op) || strcmp(op, "Constant") == 0) continue;
            bool seen = false;
            for (int k = 0; k < *n_unsup_ops && !seen; k++) seen = strcmp((*unsup_ops)[k], op) == 0;
            if (seen) continue;
            char **nv = realloc(*unsup_ops, (size_t)(*n_unsup_ops + 1) * sizeof *nv);
            if (!nv) continue;
            *unsup_ops = nv;
            nv[(*n_unsup_ops)++] = strdup(op);
        }
        err = smelt_graph_load(m, &g);
    }
    if (err) {
        r->status = smelt_err_kind_of(err) == SMELT_E_UNSUPPORTED ? ST_UNSUP : ST_FAIL;
        r->why = strdup(smelt_err_msg(err));
        smelt_err_free(err);
    } else {
        int n_sets = 0;
        char **sets = list_dir(mdir, "test_data_set_", &n_sets);
        r->status = n_sets ? ST_PASS : ST_FAIL;
        if (!n_sets) r->why = strdup("no test_data_set_* folders");
        for (int s = 0; s < n_sets && r->status == ST_PASS; s++) {
            char *sd = fmt("%s/%s", mdir, sets[s]);
            r->status = run_set(g, m, sd, &r->why);
            free(sd);
        }
        free_list(sets, n_sets);
    }
    smelt_graph_free(g);
    smelt_model_free(m);
    free(path);
    free(mdir);
}

/* Reads a claimed list: one test name a line, blank lines and '#' comments ignored. */
static char **read_claimed(const char *path, int *n)
{
    char *text = NULL;
    size_t len = 0;
    smelt_err *err = smelt_read_file(path, 1 << 20, &text, &len);
    if (err) {
        fprintf(stderr, "run_conformance: %s\n", smelt_err_msg(err));
        smelt_err_free(err);
        return NULL;
    }
    char **v = calloc(len / 2 + 2, sizeof *v);
    *n = 0;
    for (char *line = strtok(text, "\n"); line && v; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t') line++;
        char *end = line + strlen(line);
        while (end > line && (end[-1] == ' ' || end[-1] == '\r' || end[-1] == '\t')) *--end = 0;
        if (!*line || *line == '#') continue;
        v[(*n)++] = strdup(line);
    }
    free(text);
    return v;
}

int main(int argc, char **argv)
{
    const char *data = "/usr/share/libonnx-testdata/data/node", *report = NULL, *claimed = NULL, *write_claimed = NULL;
    bool verbose = false;
    char **only = calloc((size_t)argc + 1, sizeof *only);
    int n_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--data") == 0 || strcmp(a, "--report") == 0 || strcmp(a, "--claimed") == 0 || strcmp(a, "--write-claimed") == 0) && i + 1 < argc) {
            const char *v = argv[++i];
            if (a[2] == 'd') data = v;
            else if (a[2] == 'r') report = v;
            else if (a[2] == 'c') claimed = v;
            else write_claimed = v;
        } else if (strcmp(a, "-v") == 0) {
            verbose = true;
        } else if (a[0] == '-') {
            fprintf(stderr, "usage: run_conformance [--data DIR] [--report FILE] [--claimed FILE] [--write-claimed FILE] [-v] [NAME...]\n");
            free(only);
            return 2;
        } else {
            only[n_only++] = argv[i];
        }
    }
    int n_tests = 0;
    char **tests = list_dir(data, "test_", &n_tests);
    if (!tests) {
        fprintf(stderr, "run_conformance: cannot read '%s' (Debian package libonnx-testdata; run 'bash scripts/setup.sh')\n", data);
        free(only);
        return 1;
    }
    result *res = calloc((size_t)n_tests + 1, sizeof *res);
    char **unsup_ops = NULL;
    int n_unsup_ops = 0, n_res = 0;
    for (int i = 0; i < n_tests; i++) {
        bool want = n_only == 0;
        for (int k = 0; k < n_only && !want; k++) want = strcmp(only[k], tests[i]) == 0;
        if (!want) continue;
        result *r = &res[n_res++];
        run_test(data, tests[i], r, &unsup_ops, &n_unsup_ops);
        if (verbose || n_only) printf("%-11s %-60s %s%s%s\n", st_names[r->status], r->name, r->op, r->why ? ": " : "", r->why ? r->why : "");
    }

    FILE *rep = report ? fopen(report, "w") : NULL;
    if (report && !rep) fprintf(stderr, "run_conformance: cannot write '%s'\n", report);
    int count[3] = {0};
    for (int i = 0; i < n_res; i++) {
        count[res[i].status]++;
        if (rep) fprintf(rep, "%-11s %-60s %s%s%s\n", st_names[res[i].status], res[i].name, res[i].op, res[i].why ? ": " : "", res[i].why ? res[i].why : "");
    }
    /* Per-op table, ops in name order. */
    char **ops = calloc((size_t)n_res + 1, sizeof *ops);
    int n_ops = 0;
    for (int i = 0; i < n_res; i++) {
        bool seen = false;
        for (int k = 0; k < n_ops && !seen; k++) seen = strcmp(ops[k], res[i].op) == 0;
        if (!seen) ops[n_ops++] = res[i].op;
    }
    if (n_ops) qsort(ops, (size_t)n_ops, sizeof *ops, cmp_str);
    FILE *outs[2] = {stdout, rep};
    for (int f = 0; f < 2; f++) {
        FILE *o = outs[f];
        if (!o || (f == 0 && claimed)) continue;
        fprintf(o, "\n%-28s %6s %6s %6s\n", "op", "pass", "fail", "unsup");
        for (int k = 0; k < n_ops; k++) {
            int c[3] = {0};
            for (int i = 0; i < n_res; i++)
                if (strcmp(res[i].op, ops[k]) == 0) c[res[i].status]++;
            fprintf(o, "%-28s %6d %6d %6d\n", ops[k], c[0], c[1], c[2]);
        }
    }
    if (n_unsup_ops) qsort(unsup_ops, (size_t)n_unsup_ops, sizeof *unsup_ops, cmp_str);
    for (int f = 0; f < 2; f++) {
        FILE *o = outs[f];
        if (!o) continue;
        fprintf(o, "unsupported ops (%d):", n_unsup_ops);
        for (int k = 0; k < n_unsup_ops; k++) fprintf(o, " %s", unsup_ops[k]);
        fprintf(o, "\n%d passed, %d failed, %d unsupported\n", count[ST_PASS], count[ST_FAIL], count[ST_UNSUP]);
    }
    if (rep) fclose(rep);

    int rc = 0;
    if (write_claimed) {
        FILE *w = fopen(write_claimed, "w");
        if (!w) {
            fprintf(stderr, "run_conformance: cannot write '%s'\n", write_claimed);
            rc = 1;
        } else {
            fprintf(w, "# ONNX node tests the graph executor passes (tests/conformance/run_conformance.c --write-claimed).\n");
            fprintf(w, "# make test fails when any of these stops passing.\n");
            for (int i = 0; i < n_res; i++)
                if (res[i].status == ST_PASS) fprintf(w, "%s\n", res[i].name);
            fclose(w);
        }
    }
    if (claimed) {
        int n_claimed = 0, bad = 0;
        char **cl = read_claimed(claimed, &n_claimed);
        if (!cl) rc = 1;
        for (int k = 0; cl && k < n_claimed; k++) {
            const result *r = NULL;
            for (int i = 0; i < n_res && !r; i++)
                if (strcmp(res[i].name, cl[k]) == 0) r = &res[i];
            bool exists = false;
            for (int i = 0; i < n_tests && !exists; i++) exists = strcmp(tests[i], cl[k]) == 0;
            if (!r && exists && n_only) continue; /* filtered out by NAME arguments */
            if (!r || r->status != ST_PASS) {
                printf("claimed test %s: %s%s%s\n", cl[k], r ? st_names[r->status] : "missing", r && r->why ? ": " : "", r && r->why ? r->why : "");
                bad++;
            }
        }
        if (cl) printf("%d claimed tests, %d not passing\n", n_claimed, bad);
        if (bad) rc = 1;
        if (cl) free_list(cl, n_claimed);
    }
    for (int i = 0; i < n_res; i++) {
        free(res[i].name);
        free(res[i].op);
        free(res[i].why);
    }
    free(res);
    free(ops);
    free_list(unsup_ops, n_unsup_ops);
    free_list(tests, n_tests);
    free(only);
    return rc;
}
