/* The training loss over a batch's logits, and its gradient written over the logits in place.
 *
 * Per scored position (target >= 0) with student logits z and, for distillation, teacher logits t:
 *   loss = (1 - alpha) CE(z, target) + alpha T^2 KL(softmax(t/T) || softmax(z/T))
 * (alpha = 0 or no teacher: plain cross-entropy). The gradient with respect to z is
 *   (1 - alpha) (softmax(z) - onehot) + alpha T (softmax(z/T) - softmax(t/T)),
 * multiplied by grad_scale (1 / the positions of the whole optimizer step, so the step's loss is
 * their mean).
 */
#ifndef SMELT_DISTILL_LOSS_H
#define SMELT_DISTILL_LOSS_H

#include <stdint.h>

typedef struct {
    double ce, kl; /* sums over the scored positions (double) */
    int64_t n;     /* scored positions */
} tl_loss_sums;

/* logits[N,V] -> gradient (when grad_scale != 0; else left as is). teacher may be NULL. Sums are
 * added to *out. */
void tl_loss(float *logits, const int32_t *targets, const float *teacher, int N, int V, float alpha, float temp, float grad_scale, tl_loss_sums *out);

/* The mixed loss of sums: (1 - alpha) ce/n + alpha T^2 kl/n (CE alone without a teacher). */
double tl_loss_value(const tl_loss_sums *s, float alpha, float temp, int has_teacher);

#endif
