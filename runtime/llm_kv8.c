/* The int8 KV cache (kv8): each token's K and V are quantized per kv head as they are appended
 * (symmetric, scale = max|x| / 127, round half to even) and dequantized by attention. A scale per
 * (token, head) follows each head's own range, which RoPE'd keys vary a lot across. */
#include <math.h>

#include "runtime/llm_internal.h"

void llm_kv8_quantize(const float *x, int n_heads, int head_dim, int8_t *q, float *scale)
{
    for (int h = 0; h < n_heads; h++) {
        const float *v = x + (size_t)h * head_dim;
        float amax = 0;
        for (int d = 0; d < head_dim; d++) amax = fmaxf(amax, fabsf(v[d]));
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        for (int d = 0; d < head_dim; d++) q[(size_t)h * head_dim + d] = (int8_t)nearbyintf(v[d] * inv);
        scale[h] = amax / 127.0f;
    }
}

void llm_kv8_dequant_head(const int8_t *q, const float *scale, int n, int n_heads, int head_dim, int h, float *out)
{
    size_t kvd = (size_t)n_heads * head_dim;
    for (int j = 0; j < n; j++) {
        const int8_t *r = q + j * kvd + (size_t)h * head_dim;
        float s = scale[(size_t)j * n_heads + h];
        for (int d = 0; d < head_dim; d++) out[(size_t)j * head_dim + d] = (float)r[d] * s;
    }
}
