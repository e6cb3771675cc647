/* AdamW with decoupled weight decay (none on norm weights: tm_tensor.decay), a linear warm-up then
 * cosine decay of the learning rate, and clipping of the gradients' global L2 norm. Every step is a
 * fixed sequence of float operations on each element, so a run is deterministic. */
#ifndef SMELT_DISTILL_ADAMW_H
#define SMELT_DISTILL_ADAMW_H

#include <stdint.h>

#include "distill/tmodel.h"

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float min_lr_ratio; /* the cosine ends at lr * min_lr_ratio */
    int64_t warmup, total_steps;
    float clip; /* max global gradient norm; 0: no clipping */
} adamw_opts;

typedef struct {
    float *m, *v; /* first and second moments, the model's layout (owned) */
    size_t n;
    int64_t t; /* steps taken */
} adamw_state;

smelt_err *adamw_init(adamw_state *s, size_t n_params);
void adamw_free(adamw_state *s);

/* The learning rate of step (0-based): step+1/warmup * lr during warm-up, then cosine from lr down to
 * lr * min_lr_ratio at total_steps. */
float adamw_lr(const adamw_opts *o, int64_t step);

/* ||g||_2 over every parameter's gradient, summed in double in a fixed order. */
double tm_grad_norm(const tm_model *m);

/* One update of m->w from m->g with learning rate lr; the gradient is first multiplied by
 * grad_mul (clipping). */
void adamw_step(tm_model *m, adamw_state *s, const adamw_opts *o, float lr, float grad_mul);

#endif
