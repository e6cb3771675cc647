/* The activation buffers of a forward/backward pass (see step.h), shared by the Llama and GPT-2
 * passes: private to distill/step*.c and distill/acts.c. */
#ifndef SMELT_DISTILL_ACTS_H
#define SMELT_DISTILL_ACTS_H

#include "core/log.h"
#include "distill/step.h"

/* Per layer. Llama: n1/r1 rmsnorm output and 1/rms, g and u the gate and up projections, s the
 * SwiGLU output. GPT-2: mu1/mu2 the LayerNorm means as well, g the c_fc output (GELU input), s the
 * GELU output, u unused. */
typedef struct {
    float *n1, *mu1, *r1, *q, *k, *v, *P, *a, *h, *n2, *mu2, *r2, *g, *u, *s;
} tm_layer_acts;

struct tm_acts {
    int B, T, N;
    float *xs;        /* [L+1, N, C] residual stream entering each layer, then the last layer's output */
    tm_layer_acts *l; /* per layer */
    float *nf, *muf, *rf, *logits;
    /* backward scratch */
    float *dres, *dn, *dq, *dk, *dv, *da, *dg, *du, *ds, *dscratch;
    float *cs, *sn; /* RoPE tables [T, hd/2] (Llama) */
    float *block;   /* the one allocation everything points into */
};

/* Adds the seconds stmt takes to timing->field when timing is not NULL. */
#define TM_TIMED(field, stmt)                           \
    do {                                                \
        double t0_ = smelt_now();                       \
        stmt;                                           \
        if (timing) timing->field += smelt_now() - t0_; \
    } while (0)

/* The head and the loss both architectures share: logits = nf Whead^T, the loss sums, and with
 * grad_scale != 0 the head's backward: a->dn = dlogits Whead, dWhead += dlogits^T nf. */
void tm_head_pass(tm_model *m, tm_acts *a, const int32_t *targets, const float *teacher, float alpha, float temp, float grad_scale, tl_loss_sums *sums,
                  tm_timing *timing);

/* GPT-2's pass (step_gpt2.c), the Llama pass's counterpart. */
void tm_gpt2_forward_backward(tm_model *m, tm_acts *a, const int32_t *ids, const int32_t *targets, const float *teacher, float alpha, float temp,
                              float grad_scale, tl_loss_sums *sums, tm_timing *timing);

#endif
