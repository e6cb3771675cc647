/* One forward and backward pass of the trainable model over a batch of B sequences of T tokens:
 * activations saved by the forward, gradients added into the model's gradient buffer by the
 * backward. The activation buffers are allocated once for (B, T) and reused every micro-batch.
 */
#ifndef SMELT_DISTILL_STEP_H
#define SMELT_DISTILL_STEP_H

#include "distill/loss.h"
#include "distill/tmodel.h"

typedef struct tm_acts tm_acts;

smelt_err *tm_acts_new(const tm_config *c, int B, int T, tm_acts **out);
void tm_acts_free(tm_acts *a);

typedef struct {
    double t_linear, t_attn, t_loss, t_other; /* seconds: projections (sgemm), attention (sgemm + softmax), loss, the rest */
} tm_timing;

/* ids[B*T] inputs, targets[B*T] the next tokens (-1: not scored), teacher[B*T, V] logits or NULL.
 * Adds the loss sums to *sums; with grad_scale != 0 runs the backward and adds grad_scale-scaled
 * gradients to m->g. Token ids must be < V (checked by the caller). timing may be NULL. */
void tm_forward_backward(tm_model *m, tm_acts *a, const int32_t *ids, const int32_t *targets, const float *teacher, float alpha, float temp,
                         float grad_scale, tl_loss_sums *sums, tm_timing *timing);

/* The logits of the last forward pass, [B*T, V] (overwritten by gradients when it ran a backward). */
const float *tm_acts_logits(const tm_acts *a);

#endif
