/* Round-to-nearest quantization with the rules documented in rtn.h. */
#include "quant/rtn.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

void rtn_group_params(const float *w, int n, const quant_scheme *s, float *scale, int *zero)
{
    *zero = 0;
    if (s->bits == 4 && s->asym) {
        float lo = 0, hi = 0;
        for (int i = 0; i < n; i++) {
            if (w[i] < lo) lo = w[i];
            if (w[i] > hi) hi = w[i];
        }
        *scale = (hi - lo) / 15.0f;
        if (*scale == 0) *scale = 1;
        *zero = (int)nearbyintf(-lo / *scale);
        return;
    }
    float mx = 0;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, fabsf(w[i]));
    *scale = mx / (s->bits == 8 ? 127.0f : 7.0f);
    if (*scale == 0) *scale = 1;
}

int rtn_quantize_value(float w, float scale, int zero, const quant_scheme *s)
{
    int q = (int)nearbyintf(w / scale) + zero;
    int lo = s->bits == 8 ? -128 : s->asym ? 0 : -8, hi = s->bits == 8 ? 127 : s->asym ? 15 : 7;
    return q < lo ? lo : q > hi ? hi : q;
}

void rtn_quantize(const float *w, int rows, int cols, const quant_scheme *s, void *q, float *scale, uint8_t *zero)
{
    int group = s->bits == 8 ? cols : s->group, ng = cols / group;
    if (s->bits == 4) memset(q, 0, (size_t)rows * cols / 2);
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < ng; g++) {
            const float *src = w + (size_t)r * cols + (size_t)g * group;
            float sc;
            int z;
            rtn_group_params(src, group, s, &sc, &z);
            scale[(size_t)r * ng + g] = sc;
            if (zero) zero[(size_t)r * ng + g] = (uint8_t)z;
            for (int i = 0; i < group; i++) {
                int v = rtn_quantize_value(src[i], sc, z, s), c = g * group + i;
                if (s->bits == 8) ((int8_t *)q)[(size_t)r * cols + c] = (int8_t)v;
                else ((uint8_t *)q)[((size_t)r * cols + c) / 2] |= (uint8_t)((v & 15) << ((c & 1) * 4));
            }
        }
}
