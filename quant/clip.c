/* The clipping search of clip.h, rows split over the thread pool. */
#include "quant/clip.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"

#define CLIP_STEPS 21 /* shrink factors 1.0, 0.975, ..., 0.5 */
/* groups wider than this (w8's whole rows) weigh errors by diag(H) only: the full block would
 * cost cols^2 a candidate a row */
#define CLIP_FULL_BLOCK 128

void rtn_group_params_shrunk(const float *w, int n, const quant_scheme *s, float shrink, float *scale, int *zero)
{
    *zero = 0;
    if (s->bits == 4 && s->asym) {
        float lo = 0, hi = 0;
        for (int i = 0; i < n; i++) {
            if (w[i] < lo) lo = w[i];
            if (w[i] > hi) hi = w[i];
        }
        lo *= shrink, hi *= shrink;
        *scale = (hi - lo) / 15.0f;
        if (*scale == 0) *scale = 1;
        *zero = (int)nearbyintf(-lo / *scale);
        return;
    }
    float mx = 0;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, fabsf(w[i]));
    *scale = mx * shrink / (s->bits == 8 ? 127.0f : 7.0f);
    if (*scale == 0) *scale = 1;
}

typedef struct {
    const float *w;
    int cols, group;
    const quant_scheme *s;
    const double *H;
    void *q;
    float *scale;
    uint8_t *zero;
} clip_job;

/* the error of quantizing src[0..n) with (sc, z): e^T Hg e, or e^T e without H */
static double group_error(const float *src, int n, const quant_scheme *s, float sc, int z, const double *Hg, int ld, bool diag_only, double *e)
{
    for (int i = 0; i < n; i++) e[i] = (double)src[i] - (double)sc * (rtn_quantize_value(src[i], sc, z, s) - z);
    double err = 0;
    if (!Hg) {
        for (int i = 0; i < n; i++) err += e[i] * e[i];
        return err;
    }
    if (diag_only) {
        for (int i = 0; i < n; i++) err += e[i] * e[i] * Hg[(size_t)i * ld + i];
        return err;
    }
    for (int i = 0; i < n; i++) {
        if (e[i] == 0) continue;
        const double *h = Hg + (size_t)i * ld;
        double acc = 0;
        for (int j = 0; j < n; j++) acc += h[j] * e[j];
        err += e[i] * acc;
    }
    return err;
}

static void store_group(const clip_job *j, int64_t r, int g, const float *src, float sc, int z)
{
    int ng = j->cols / j->group;
    j->scale[(size_t)r * ng + g] = sc;
    if (j->zero) j->zero[(size_t)r * ng + g] = (uint8_t)z;
    for (int i = 0; i < j->group; i++) {
        int v = rtn_quantize_value(src[i], sc, z, j->s), c = g * j->group + i;
        if (j->s->bits == 8) ((int8_t *)j->q)[(size_t)r * j->cols + c] = (int8_t)v;
        else {
            uint8_t *b = &((uint8_t *)j->q)[((size_t)r * j->cols + c) / 2];
            int sh = (c & 1) * 4;
            *b = (uint8_t)((*b & ~(15 << sh)) | ((v & 15) << sh));
        }
    }
}

static void quant_error(const float *src, int n, const quant_scheme *s, float sc, int z, double *e)
{
    for (int i = 0; i < n; i++) e[i] = (double)src[i] - (double)sc * (rtn_quantize_value(src[i], sc, z, s) - z);
}

/* With H and groups of at most CLIP_FULL_BLOCK: the groups of a row are chosen in turn, each
 * against the errors the row's other groups have at that point (RTN's at first), so the
 * cross-group terms of e^T H e count: the cost of a candidate e' for group g is
 * e'^T H_gg e' + 2 e'^T (H e - H_gg e_g)_g. */
static void clip_rows_coupled(clip_job *j, int64_t r0, int64_t r1)
{
    int n = j->cols, G = j->group, ng = n / G;
    double *e = malloc((size_t)n * sizeof *e), *v = malloc((size_t)n * sizeof *v), *cand = malloc((size_t)G * sizeof *cand),
           *b = malloc((size_t)G * sizeof *b), *best_e = malloc((size_t)G * sizeof *best_e);
    if (!e || !v || !cand || !b || !best_e) goto out; /* the caller pre-filled RTN's result */
    for (int64_t r = r0; r < r1; r++) {
        const float *row = j->w + (size_t)r * n;
        for (int g = 0; g < ng; g++) {
            float sc;
            int z;
            rtn_group_params_shrunk(row + (size_t)g * G, G, j->s, 1.0f, &sc, &z);
            quant_error(row + (size_t)g * G, G, j->s, sc, z, e + (size_t)g * G);
        }
        for (int i = 0; i < n; i++) { /* v = H e */
            const double *h = j->H + (size_t)i * n;
            double acc = 0;
            for (int k = 0; k < n; k++) acc += h[k] * e[k];
            v[i] = acc;
        }
        for (int g = 0; g < ng; g++) {
            const float *src = row + (size_t)g * G;
            const double *Hg = j->H + ((size_t)g * G) * n + (size_t)g * G;
            double *eg = e + (size_t)g * G;
            for (int i = 0; i < G; i++) { /* b = the other groups' share of (H e)_g */
                double own = 0;
                for (int k = 0; k < G; k++) own += Hg[(size_t)i * n + k] * eg[k];
                b[i] = v[(size_t)g * G + i] - own;
            }
            float best_sc = 0;
            int best_z = 0;
            double best = INFINITY;
            for (int k = 0; k < CLIP_STEPS; k++) {
                float sc;
                int z;
                rtn_group_params_shrunk(src, G, j->s, 1.0f - 0.025f * (float)k, &sc, &z);
                quant_error(src, G, j->s, sc, z, cand);
                double cost = 0;
                for (int i = 0; i < G; i++) {
                    if (cand[i] == 0) continue;
                    double acc = 2 * b[i];
                    for (int m = 0; m < G; m++) acc += Hg[(size_t)i * n + m] * cand[m];
                    cost += cand[i] * acc;
                }
                if (cost < best) {
                    best = cost, best_sc = sc, best_z = z;
                    memcpy(best_e, cand, (size_t)G * sizeof *cand);
                }
            }
            store_group(j, r, g, src, best_sc, best_z);
            /* v += H[:, group g] (e'_g - e_g) */
            for (int k = 0; k < G; k++) {
                double d = best_e[k] - eg[k];
                if (d == 0) continue;
                for (int i = 0; i < n; i++) v[i] += j->H[(size_t)i * n + (size_t)g * G + k] * d;
                eg[k] = best_e[k];
            }
        }
    }
out:
    free(e), free(v), free(cand), free(b), free(best_e);
}

static void clip_rows(void *ctx, int64_t r0, int64_t r1)
{
    clip_job *j = ctx;
    if (j->H && j->group <= CLIP_FULL_BLOCK) {
        clip_rows_coupled(j, r0, r1);
        return;
    }
    int ng = j->cols / j->group;
    double *e = malloc((size_t)j->group * sizeof *e);
    if (!e) return; /* the caller pre-filled RTN's result */
    for (int64_t r = r0; r < r1; r++)
        for (int g = 0; g < ng; g++) {
            const float *src = j->w + (size_t)r * j->cols + (size_t)g * j->group;
            const double *Hg = j->H ? j->H + ((size_t)g * j->group) * j->cols + (size_t)g * j->group : NULL;
            float best_sc = 0;
            int best_z = 0;
            double best = INFINITY;
            for (int k = 0; k < CLIP_STEPS; k++) {
                float sc;
                int z;
                rtn_group_params_shrunk(src, j->group, j->s, 1.0f - 0.025f * (float)k, &sc, &z);
                double err = group_error(src, j->group, j->s, sc, z, Hg, j->cols, j->group > CLIP_FULL_BLOCK, e);
                if (err < best) best = err, best_sc = sc, best_z = z;
            }
            store_group(j, r, g, src, best_sc, best_z);
        }
    free(e);
}

void clip_quantize(const float *w, int rows, int cols, const quant_scheme *s, const double *H, void *q, float *scale, uint8_t *zero)
{
    rtn_quantize(w, rows, cols, s, q, scale, zero);
    clip_job j = {w, cols, s->bits == 8 ? cols : s->group, s, H, q, scale, zero};
    smelt_parallel_for(rows, 4, clip_rows, &j);
}
