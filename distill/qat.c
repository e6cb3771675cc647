/* Fake quantization for quantization-aware training (see qat.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/qat.h"

#include <string.h>

#include "core/threads.h"

/* the layers' linear weights: what `smelt quant` quantizes (not embeddings, head, norms, biases) */
static bool is_projection(const tm_model *m, int idx) { return m->tensors[idx].kind == TM_K_PROJ; }

static int group_of(const quant_scheme *s, int cols) { return s->bits == 8 ? cols : s->group; }

smelt_err *qat_check(const tm_model *m, const quant_scheme *s)
{
    if (s->bits != 4 && s->bits != 8) return SMELT_ERR(SMELT_E_INVALID, "--qat: %d bits; supported: w8, w4", s->bits);
    for (int i = 0; i < m->n_tensors; i++) {
        if (!is_projection(m, i)) continue;
        int cols = (int)m->tensors[i].shape[1];
        if (s->bits == 4 && (s->group < 2 || cols % s->group))
            return SMELT_ERR(SMELT_E_INVALID, "--qat-group %d does not divide the %d input features of '%s'", s->group, cols, m->tensors[i].name);
    }
    return NULL;
}

typedef struct {
    const float *src;
    float *dst;
    int cols;
    const quant_scheme *s;
} fq_job;

static void fq_rows(void *ctx, int64_t begin, int64_t end)
{
    const fq_job *j = ctx;
    int group = group_of(j->s, j->cols);
    for (int64_t r = begin; r < end; r++)
        for (int g = 0; g < j->cols; g += group) {
            const float *w = j->src + (size_t)r * j->cols + g;
            float *o = j->dst + (size_t)r * j->cols + g, scale;
            int zero;
            rtn_group_params(w, group, j->s, &scale, &zero);
            for (int i = 0; i < group; i++) o[i] = (float)(rtn_quantize_value(w[i], scale, zero, j->s) - zero) * scale;
        }
}

void qat_fake_quantize(const tm_model *m, const float *master, float *out, const quant_scheme *s)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const tm_tensor *t = &m->tensors[i];
        if (!is_projection(m, i)) {
            memcpy(out + t->off, master + t->off, t->numel * sizeof(float));
            continue;
        }
        fq_job j = {master + t->off, out + t->off, (int)t->shape[1], s};
        smelt_parallel_for(t->shape[0], 16, fq_rows, &j);
    }
}
