/* Direct stride-1 2-D convolution (runtime/graph/conv_direct.c): Conv's fast path for the small
 * "same" convolutions of CNNs when the CPU has AVX-512, writing NCHW with bias and an optional Relu. */
#ifndef SMELT_GX_CONV_DIRECT_H
#define SMELT_GX_CONV_DIRECT_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/graph/gx.h"

/* Taps (Cg * KH * KW) a convolution may have on this path. */
#define GX_CONV2D_MAX_K 4096

/* y[N, G*Mg, OH, OW] = conv(x[N, G*Cg, H, W], w[G*Mg, Cg, KH, KW]) + b, stride 1, dilations dh, dw,
 * pads top pt, bottom pb, left pl, right pr (OH = H + pt + pb - (KH-1)*dh, likewise OW). */
typedef struct {
    const float *x, *w, *b; /* b may be NULL */
    float *y;
    int64_t N, G, Cg, Mg, H, W, KH, KW, dh, dw, pt, pb, pl, pr, OH, OW;
    bool relu;
    bool pool2; /* then (with relu) a 2x2 stride-2 max pool: y is [N, G*Mg, OH/2, OW/2] */
} gx_conv2d;

/* Whether gx_conv2d_direct serves p on this CPU. */
bool gx_conv2d_direct_ok(const gx_conv2d *p);
/* Runs p (gx_conv2d_direct_ok must hold); scratch from c; errors only on out of memory. */
smelt_err *gx_conv2d_direct(gx_call *c, const gx_conv2d *p);

#endif
