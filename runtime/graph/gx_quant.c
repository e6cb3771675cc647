/* The executor's int8 weights: dequantizing a per-channel int8 tensor into f32 (for the many-row
 * products, which then run on sgemm with f32 accumulation), and the few-row products streamed by
 * qmatmul's run-time-chosen kernels (AVX-512 / AVX2 / scalar) straight from the int8 bytes. */
#include <string.h>

#include "runtime/cpu/qmatmul.h"
#include "runtime/graph/gx.h"

typedef struct {
    const gx_qweight *w;
    float *out;
} dq_job;

/* channels [begin, end) of the tensor: every run of `inner` elements shares one scale; a channel's
 * runs repeat every channels * inner elements (axis > 0 has outer dims in front) */
static void dq_part(void *ctx, int64_t begin, int64_t end)
{
    const dq_job *j = ctx;
    const gx_qweight *w = j->w;
    int64_t outer_stride = w->channels * w->inner;
    for (int64_t o = begin; o < end; o++) {
        const int8_t *q = w->q + o * outer_stride;
        float *out = j->out + o * outer_stride;
        for (int64_t c = 0; c < w->channels; c++) {
            float s = w->scale[c];
            const int8_t *qc = q + c * w->inner;
            float *oc = out + c * w->inner;
            for (int64_t i = 0; i < w->inner; i++) oc[i] = s * (float)qc[i];
        }
    }
}

void gx_dequant(const gx_qweight *w, int64_t numel, float *out)
{
    int64_t per_outer = w->channels * w->inner, outer = per_outer > 0 ? numel / per_outer : 0;
    dq_job j = {w, out};
    if (w->inner == 1 && outer > 1) {
        /* axis last ([K, N] along N): scales vary along the row, one pass per row */
        for (int64_t o = 0; o < outer; o++) {
            const int8_t *q = w->q + o * w->channels;
            float *y = out + o * w->channels;
            for (int64_t c = 0; c < w->channels; c++) y[c] = w->scale[c] * (float)q[c];
        }
        return;
    }
    gx_parallel(outer, w->channels * w->inner, dq_part, &j);
}

bool gx_qmat_rows(const gx_qweight *w, const int8_t *rows, int64_t N, int64_t K, const float *x, int64_t T, float *y)
{
    qmat m = {8, (int)N, (int)K, (int)K, rows, w->scale, NULL, false};
    return qmat_mul(&m, x, (int)T, y);
}
