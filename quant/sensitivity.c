/* Sensitivity by one engine per weight (that weight fake-quantized in f32, the rest as loaded),
 * KL against the float engine window by window; the greedy budget of sensitivity.h. */
#include "quant/sensitivity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/qmatmul.h"
#include "runtime/llm.h"

int64_t quant_weight_bytes(int64_t rows, int64_t cols, const quant_scheme *s)
{
    if (s->bits == 8) return rows * cols + rows * 4;
    int64_t groups = rows * (cols / s->group);
    return rows * cols / 2 + groups * 4 + (s->asym ? groups : 0);
}

/* mean over rows of KL(softmax(p) || softmax(q)), rows of V logits */
static double mean_kl(const float *p, const float *q, int rows, int V)
{
    double total = 0;
    for (int t = 0; t < rows; t++) {
        const float *a = p + (size_t)t * V, *b = q + (size_t)t * V;
        float ma = a[0], mb = b[0];
        for (int v = 1; v < V; v++) ma = fmaxf(ma, a[v]), mb = fmaxf(mb, b[v]);
        double za = 0, zb = 0;
        for (int v = 0; v < V; v++) za += exp((double)a[v] - ma), zb += exp((double)b[v] - mb);
        double lza = log(za) + ma, lzb = log(zb) + mb, kl = 0;
        for (int v = 0; v < V; v++) {
            double la = a[v] - lza;
            kl += exp(la) * (la - (b[v] - lzb));
        }
        total += kl;
    }
    return total / rows;
}

static smelt_err *window_logits(llm_engine *e, const int32_t *ids, int window, float *out)
{
    llm_seq *s = NULL;
    SMELT_TRY(llm_seq_new(e, &s));
    llm_batch_item it = {s, ids, window, true};
    smelt_err *err = llm_forward(e, &it, 1, out);
    llm_seq_free(s);
    return err;
}

smelt_err *quant_sensitivity(smelt_model *m, const int *tensors, int n, const quant_scheme *low, const int32_t *ids, int n_windows, int window,
                             void (*progress)(void *ctx, int done, int total), void *ctx, double *kl)
{
    int V = m->llm.vocab_size;
    size_t per = (size_t)window * V;
    float *ref = malloc(per * n_windows * sizeof *ref), *got = malloc(per * sizeof *got);
    llm_engine *e = NULL;
    smelt_err *err = NULL;
    if (!ref || !got) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory for %d windows of logits", n_windows);
    if (!err) err = llm_engine_new(m, &e);
    for (int w = 0; !err && w < n_windows; w++) err = window_logits(e, ids + (size_t)w * window, window, ref + per * w);
    llm_engine_free(e);
    for (int i = 0; !err && i < n; i++) {
        smelt_tensor *t = &m->tensors[tensors[i]];
        int rows = (int)t->shape[0], cols = (int)t->shape[1], group = low->bits == 8 ? cols : low->group;
        size_t nw = (size_t)rows * cols;
        float *w = malloc(nw * sizeof *w), *scale = malloc(nw / group * sizeof *scale);
        void *q = malloc(nw);
        uint8_t *zero = low->asym ? malloc(nw / group) : NULL;
        if (!w || !scale || !q || (low->asym && !zero)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        if (!err) {
            /* the weight rounded and read back in f32: the engine runs it as a float weight */
            smelt_convert_float(w, SMELT_DT_F32, t->data, t->dtype, nw);
            rtn_quantize(w, rows, cols, low, q, scale, zero);
            qmat qm = {low->bits, rows, cols, group, q, scale, zero, false};
            qmat_dequant_rows(&qm, 0, rows, w);
            void *keep = t->data;
            smelt_dtype keep_dt = t->dtype;
            size_t keep_n = t->nbytes;
            t->data = w, t->dtype = SMELT_DT_F32, t->nbytes = nw * sizeof *w;
            err = llm_engine_new(m, &e);
            double sum = 0;
            for (int win = 0; !err && win < n_windows; win++) {
                err = window_logits(e, ids + (size_t)win * window, window, got);
                if (!err) sum += mean_kl(ref + per * win, got, window, V);
            }
            llm_engine_free(e);
            e = NULL;
            t->data = keep, t->dtype = keep_dt, t->nbytes = keep_n;
            kl[i] = sum / n_windows;
        }
        free(w), free(scale), free(q), free(zero);
        if (progress) progress(ctx, i + 1, n);
    }
    free(ref), free(got);
    return err;
}

typedef struct {
    double gain; /* sensitivity removed per extra byte */
    int i;
} upgrade;

static int by_gain(const void *a, const void *b)
{
    const upgrade *x = a, *y = b;
    return x->gain > y->gain ? -1 : x->gain < y->gain ? 1 : (x->i > y->i) - (x->i < y->i);
}

smelt_err *quant_mixed_choose(const int64_t *rows, const int64_t *cols, const double *kl, const double *kl_high, int n, const quant_scheme *low,
                              double avg_bits, bool *high, double *avg_out)
{
    quant_scheme w8 = {8, 0, false};
    double weights = 0, bytes = 0;
    for (int i = 0; i < n; i++) {
        high[i] = false;
        weights += (double)rows[i] * cols[i];
        bytes += (double)quant_weight_bytes(rows[i], cols[i], low);
    }
    double budget = avg_bits * weights / 8;
    if (bytes > budget)
        return SMELT_ERR(SMELT_E_INVALID, "--avg-bits %.3g is below what the scheme itself takes (%.3f bits per weight with scales)", avg_bits, 8 * bytes / weights);
    upgrade *u = malloc((size_t)(n ? n : 1) * sizeof *u);
    if (!u) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        double extra = (double)(quant_weight_bytes(rows[i], cols[i], &w8) - quant_weight_bytes(rows[i], cols[i], low));
        u[i] = (upgrade){(kl[i] - (kl_high ? kl_high[i] : 0)) / extra, i};
    }
    qsort(u, (size_t)n, sizeof *u, by_gain);
    for (int k = 0; k < n; k++) {
        int i = u[k].i;
        double extra = (double)(quant_weight_bytes(rows[i], cols[i], &w8) - quant_weight_bytes(rows[i], cols[i], low));
        if (bytes + extra > budget) continue; /* a smaller one further down may still fit */
        bytes += extra;
        high[i] = true;
    }
    free(u);
    *avg_out = 8 * bytes / weights;
    return NULL;
}
