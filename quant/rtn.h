/* Round-to-nearest quantization of weight matrices [rows, cols] (rows = output channels), the
 * storage runtime/cpu/qmatmul.h reads:
 *   w8      symmetric per output channel: scale = max|w| / 127, q = round(w / scale)
 *   w4 sym  per group of `group` columns: scale = max|w| / 7, q = clamp(round(w / scale), -8, 7)
 *   w4 asym lo = min(w, 0), hi = max(w, 0), scale = (hi - lo) / 15, zero = round(-lo / scale),
 *           q = clamp(round(w / scale) + zero, 0, 15)
 * Scales are f32 and every division is done in f32; rounding is half to even. A group of zeros gets
 * scale 1 (its values stay exactly 0). */
#ifndef SMELT_RTN_H
#define SMELT_RTN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int bits;  /* 8 or 4 */
    int group; /* columns a scale (4-bit); ignored for 8-bit (a whole row) */
    bool asym; /* 4-bit only */
} quant_scheme;

/* q: int8 [rows][cols] or packed nibbles [rows][cols/2]; scale [rows][cols/group] (8-bit: [rows]);
 * zero [rows][cols/group] when asym. cols must be a multiple of group (and even) for 4-bit. */
void rtn_quantize(const float *w, int rows, int cols, const quant_scheme *s, void *q, float *scale, uint8_t *zero);

/* Quantizes one group of n values with the scheme's rule; writes q as unpacked ints. Shared with
 * GPTQ/AWQ, which choose the values a group is quantized from. */
void rtn_group_params(const float *w, int n, const quant_scheme *s, float *scale, int *zero);
int rtn_quantize_value(float w, float scale, int zero, const quant_scheme *s);

#endif
