/* The Llama forward and backward over a batch (see step.h; GPT-2's is step_gpt2.c, the buffers
 * acts.c). Per layer l with residual stream x:
 *   n1 = rmsnorm(x); q,k,v = n1 Wq^T, n1 Wk^T, n1 Wv^T; rope(q, k); a = attention(q, k, v)
 *   h = x + a Wo^T; n2 = rmsnorm(h); s = silu(n2 Wg^T) * (n2 Wu^T); x' = h + s Wd^T
 * then logits = rmsnorm(x_L) Whead^T. The backward walks the same steps in reverse, the residual
 * gradient accumulating in one buffer. */
#define _POSIX_C_SOURCE 200809L
#include "distill/step.h"

#include <stdlib.h>
#include <string.h>

#include "distill/acts.h"
#include "distill/layers.h"

void tm_head_pass(tm_model *m, tm_acts *a, const int32_t *targets, const float *teacher, float alpha, float temp, float grad_scale, tl_loss_sums *sums,
                  tm_timing *timing)
{
    int N = a->N, C = m->c.C, V = m->c.V;
    TM_TIMED(t_linear, tl_linear_forward(a->logits, a->nf, tm_w(m, tm_idx_head(m)), NULL, N, C, V));
    TM_TIMED(t_loss, tl_loss(a->logits, targets, teacher, N, V, alpha, temp, grad_scale, sums));
    /* logits now hold their gradient */
    if (grad_scale != 0)
        TM_TIMED(t_linear, tl_linear_backward(a->dn, false, tm_g(m, tm_idx_head(m)), NULL, a->logits, a->nf, tm_w(m, tm_idx_head(m)), N, C, V));
}

static void llama_pass(tm_model *m, tm_acts *a, const int32_t *ids, const int32_t *targets, const float *teacher, float alpha, float temp, float grad_scale,
                       tl_loss_sums *sums, tm_timing *timing)
{
    const tm_config *c = &m->c;
    int N = a->N, B = a->B, T = a->T, C = c->C, QD = c->nh * c->hd, KVD = c->nkv * c->hd, F = c->F;
    tl_embed_forward(a->xs, ids, tm_w(m, tm_idx_embed(m)), N, C);
    for (int l = 0; l < c->L; l++) {
        tm_layer_acts *la = &a->l[l];
        float *x = a->xs + (size_t)l * N * C, *xn = x + (size_t)N * C;
        tl_rmsnorm_forward(la->n1, la->r1, x, tm_w(m, tm_idx_layer(m, l, TM_LN1)), N, C, c->eps);
        TM_TIMED(t_linear, tl_linear_forward(la->q, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WQ)), NULL, N, C, QD);
              tl_linear_forward(la->k, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WK)), NULL, N, C, KVD);
              tl_linear_forward(la->v, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WV)), NULL, N, C, KVD));
        tl_rope(la->q, a->cs, a->sn, B, T, c->nh, c->hd, false);
        tl_rope(la->k, a->cs, a->sn, B, T, c->nkv, c->hd, false);
        TM_TIMED(t_attn, tl_attention_forward(la->a, la->P, la->q, la->k, la->v, B, T, c->nh, c->nkv, c->hd));
        TM_TIMED(t_linear, tl_linear_forward(la->h, la->a, tm_w(m, tm_idx_layer(m, l, TM_WO)), NULL, N, QD, C));
        tl_add(la->h, la->h, x, (int64_t)N * C);
        tl_rmsnorm_forward(la->n2, la->r2, la->h, tm_w(m, tm_idx_layer(m, l, TM_LN2)), N, C, c->eps);
        TM_TIMED(t_linear, tl_linear_forward(la->g, la->n2, tm_w(m, tm_idx_layer(m, l, TM_WG)), NULL, N, C, F);
              tl_linear_forward(la->u, la->n2, tm_w(m, tm_idx_layer(m, l, TM_WU)), NULL, N, C, F));
        tl_swiglu_forward(la->s, la->g, la->u, (int64_t)N * F);
        TM_TIMED(t_linear, tl_linear_forward(xn, la->s, tm_w(m, tm_idx_layer(m, l, TM_WD)), NULL, N, F, C));
        tl_add(xn, xn, la->h, (int64_t)N * C);
    }
    float *xL = a->xs + (size_t)c->L * N * C;
    tl_rmsnorm_forward(a->nf, a->rf, xL, tm_w(m, tm_idx_norm(m)), N, C, c->eps);
    tm_head_pass(m, a, targets, teacher, alpha, temp, grad_scale, sums, timing);
    if (grad_scale != 0) {
        memset(a->dres, 0, (size_t)N * C * sizeof(float));
        tl_rmsnorm_backward(a->dres, tm_g(m, tm_idx_norm(m)), a->dn, xL, tm_w(m, tm_idx_norm(m)), a->rf, N, C);
        for (int l = c->L - 1; l >= 0; l--) {
            tm_layer_acts *la = &a->l[l];
            float *x = a->xs + (size_t)l * N * C;
            /* x' = h + s Wd^T: dres is dx' and becomes dh */
            TM_TIMED(t_linear, tl_linear_backward(a->ds, false, tm_g(m, tm_idx_layer(m, l, TM_WD)), NULL, a->dres, la->s, tm_w(m, tm_idx_layer(m, l, TM_WD)), N, F, C));
            tl_swiglu_backward(a->dg, a->du, a->ds, la->g, la->u, (int64_t)N * F);
            TM_TIMED(t_linear, tl_linear_backward(a->dn, false, tm_g(m, tm_idx_layer(m, l, TM_WG)), NULL, a->dg, la->n2, tm_w(m, tm_idx_layer(m, l, TM_WG)), N, C, F);
                  tl_linear_backward(a->dn, true, tm_g(m, tm_idx_layer(m, l, TM_WU)), NULL, a->du, la->n2, tm_w(m, tm_idx_layer(m, l, TM_WU)), N, C, F));
            tl_rmsnorm_backward(a->dres, tm_g(m, tm_idx_layer(m, l, TM_LN2)), a->dn, la->h, tm_w(m, tm_idx_layer(m, l, TM_LN2)), la->r2, N, C);
            /* h = x + a Wo^T: dres is dh and becomes dx */
            TM_TIMED(t_linear, tl_linear_backward(a->da, false, tm_g(m, tm_idx_layer(m, l, TM_WO)), NULL, a->dres, la->a, tm_w(m, tm_idx_layer(m, l, TM_WO)), N, QD, C));
            TM_TIMED(t_attn, tl_attention_backward(a->dq, a->dk, a->dv, a->dscratch, a->da, la->P, la->q, la->k, la->v, B, T, c->nh, c->nkv, c->hd));
            tl_rope(a->dq, a->cs, a->sn, B, T, c->nh, c->hd, true);
            tl_rope(a->dk, a->cs, a->sn, B, T, c->nkv, c->hd, true);
            TM_TIMED(t_linear, tl_linear_backward(a->dn, false, tm_g(m, tm_idx_layer(m, l, TM_WQ)), NULL, a->dq, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WQ)), N, C, QD);
                  tl_linear_backward(a->dn, true, tm_g(m, tm_idx_layer(m, l, TM_WK)), NULL, a->dk, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WK)), N, C, KVD);
                  tl_linear_backward(a->dn, true, tm_g(m, tm_idx_layer(m, l, TM_WV)), NULL, a->dv, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WV)), N, C, KVD));
            tl_rmsnorm_backward(a->dres, tm_g(m, tm_idx_layer(m, l, TM_LN1)), a->dn, x, tm_w(m, tm_idx_layer(m, l, TM_LN1)), la->r1, N, C);
        }
        tl_embed_backward(tm_g(m, tm_idx_embed(m)), a->dres, ids, N, C);
    }
}

void tm_forward_backward(tm_model *m, tm_acts *a, const int32_t *ids, const int32_t *targets, const float *teacher, float alpha, float temp,
                         float grad_scale, tl_loss_sums *sums, tm_timing *timing)
{
    double t_start = smelt_now(), t_known0 = timing ? timing->t_linear + timing->t_attn + timing->t_loss : 0;
    if (m->c.arch == TM_GPT2) tm_gpt2_forward_backward(m, a, ids, targets, teacher, alpha, temp, grad_scale, sums, timing);
    else llama_pass(m, a, ids, targets, teacher, alpha, temp, grad_scale, sums, timing);
    if (timing) timing->t_other += (smelt_now() - t_start) - (timing->t_linear + timing->t_attn + timing->t_loss - t_known0);
}
