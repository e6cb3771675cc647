/* Import speed: loading the bf16 teacher (2 shards) as smelt does (mmap, no copy), next to reading
 * the same bytes into memory with read(2), measured side by side in one run, min and median of
 * several runs. Also the .smelt artifact open, and a full import with SHA-256 provenance.
 * Usage: bench_import HF_DIR ARTIFACT.smelt RUNS */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "formats/artifact.h"
#include "formats/hf_model.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Reads every byte of path into a fresh buffer (what a copying loader must at least do). */
static size_t read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    volatile char sink = buf[got / 2];
    (void)sink;
    free(buf);
    return got;
}

typedef struct {
    const char *name;
    double t[64];
} series;

static void report(FILE *out, series *s, int runs, double base_median)
{
    qsort(s->t, (size_t)runs, sizeof(double), cmp_d);
    double med = s->t[runs / 2];
    fprintf(out, "%-44s min %8.3f ms  median %8.3f ms  median/read-baseline %6.2f\n", s->name, s->t[0] * 1e3, med * 1e3, med / base_median);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_import HF_DIR ARTIFACT.smelt RUNS\n");
        return 2;
    }
    const char *dir = argv[1], *art = argv[2];
    int runs = atoi(argv[3]);
    if (runs < 1 || runs > 64) runs = 9;
    static const char *const shards[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    series base = {.name = "read(2) of both shards into memory"}, imp = {.name = "smelt HF import (mmap, graph, no hashing)"},
           imph = {.name = "smelt HF import with SHA-256 provenance"}, aw = {.name = "smelt artifact write (hash + zip, fsync)"},
           ar = {.name = "smelt artifact open (mmap)"}, av = {.name = "smelt verify (every SHA-256 and CRC)"};
    char *tmp_art = malloc(strlen(art) + 8);
    sprintf(tmp_art, "%s.bench", art);
    artifact_write_opts wo = {"any", "bench", "bench"};
    for (int r = 0; r < runs; r++) {
        double t0 = smelt_now();
        for (int i = 0; i < 2; i++) {
            char *p = smelt_path_join(dir, shards[i]);
            read_all(p);
            free(p);
        }
        base.t[r] = smelt_now() - t0;
        smelt_model *m = NULL;
        t0 = smelt_now();
        smelt_err *err = hf_import(dir, false, &m);
        imp.t[r] = smelt_now() - t0;
        smelt_model_free(m);
        if (!err) {
            t0 = smelt_now();
            err = hf_import(dir, true, &m);
            imph.t[r] = smelt_now() - t0;
            if (!err) {
                t0 = smelt_now();
                err = artifact_write(tmp_art, m, &wo);
                aw.t[r] = smelt_now() - t0;
            }
            smelt_model_free(m);
        }
        if (!err) {
            t0 = smelt_now();
            err = artifact_read(art, &m);
            ar.t[r] = smelt_now() - t0;
            smelt_model_free(m);
        }
        if (!err) {
            int n;
            t0 = smelt_now();
            err = artifact_verify(art, &n);
            av.t[r] = smelt_now() - t0;
        }
        if (err) {
            fprintf(stderr, "bench_import: %s\n", smelt_err_msg(err));
            return 1;
        }
    }
    qsort(base.t, (size_t)runs, sizeof(double), cmp_d);
    double base_med = base.t[runs / 2];
    printf("import of %s, %d runs (page cache warm)\n", dir, runs);
    report(stdout, &base, runs, base_med);
    report(stdout, &imp, runs, base_med);
    report(stdout, &imph, runs, base_med);
    report(stdout, &aw, runs, base_med);
    report(stdout, &ar, runs, base_med);
    report(stdout, &av, runs, base_med);
    remove(tmp_art);
    free(tmp_art);
    return 0;
}
