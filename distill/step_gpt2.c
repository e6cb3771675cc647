/* GPT-2's forward and backward over a batch (see step.h). Per layer l with residual stream x:
 *   n1 = layernorm(x); q,k,v = n1 Wqkv^T + bqkv (the fused c_attn's three row blocks); a = attention(q, k, v)
 *   h = x + a Wproj^T + bproj; n2 = layernorm(h); s = gelu(n2 Wfc^T + bfc); x' = h + s Wfp^T + bfp
 * with x_0 = wte[ids] + wpe[positions], then logits = layernorm(x_L) wte^T. No RoPE; every head has
 * its own keys and values. The backward walks the same steps in reverse, the residual gradient
 * accumulating in one buffer. Attention, the head and the loss are the Llama pass's. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "distill/acts.h"
#include "distill/layers.h"
#include "distill/layers_gpt2.h"

void tm_gpt2_forward_backward(tm_model *m, tm_acts *a, const int32_t *ids, const int32_t *targets, const float *teacher, float alpha, float temp,
                              float grad_scale, tl_loss_sums *sums, tm_timing *timing)
{
    const tm_config *c = &m->c;
    int N = a->N, B = a->B, T = a->T, C = c->C, F = c->F;
    size_t CC = (size_t)C * C;
#define W(slot) tm_w(m, tm_idx_layer(m, l, slot))
#define G(slot) tm_g(m, tm_idx_layer(m, l, slot))
    tl_embed_forward(a->xs, ids, tm_w(m, tm_idx_embed(m)), N, C);
    tl_pos_forward(a->xs, tm_w(m, tm_idx_pos(m)), B, T, C);
    for (int l = 0; l < c->L; l++) {
        tm_layer_acts *la = &a->l[l];
        float *x = a->xs + (size_t)l * N * C, *xn = x + (size_t)N * C;
        tl_layernorm_forward(la->n1, la->mu1, la->r1, x, W(TG_LN1W), W(TG_LN1B), N, C, c->eps);
        /* c_attn's rows 0..C-1 make q, C..2C-1 k, 2C..3C-1 v: three products on slices, no split copy */
        TM_TIMED(t_linear, tl_linear_forward(la->q, la->n1, W(TG_QKVW), W(TG_QKVB), N, C, C);
                 tl_linear_forward(la->k, la->n1, W(TG_QKVW) + CC, W(TG_QKVB) + C, N, C, C);
                 tl_linear_forward(la->v, la->n1, W(TG_QKVW) + 2 * CC, W(TG_QKVB) + 2 * C, N, C, C));
        TM_TIMED(t_attn, tl_attention_forward(la->a, la->P, la->q, la->k, la->v, B, T, c->nh, c->nh, c->hd));
        TM_TIMED(t_linear, tl_linear_forward(la->h, la->a, W(TG_PROJW), W(TG_PROJB), N, C, C));
        tl_add(la->h, la->h, x, (int64_t)N * C);
        tl_layernorm_forward(la->n2, la->mu2, la->r2, la->h, W(TG_LN2W), W(TG_LN2B), N, C, c->eps);
        TM_TIMED(t_linear, tl_linear_forward(la->g, la->n2, W(TG_FCW), W(TG_FCB), N, C, F));
        tl_gelu_forward(la->s, la->g, (int64_t)N * F);
        TM_TIMED(t_linear, tl_linear_forward(xn, la->s, W(TG_FPW), W(TG_FPB), N, F, C));
        tl_add(xn, xn, la->h, (int64_t)N * C);
    }
    float *xL = a->xs + (size_t)c->L * N * C;
    int nf = tm_idx_norm(m);
    tl_layernorm_forward(a->nf, a->muf, a->rf, xL, tm_w(m, nf), tm_w(m, nf + 1), N, C, c->eps);
    tm_head_pass(m, a, targets, teacher, alpha, temp, grad_scale, sums, timing);
    if (grad_scale == 0) return;
    memset(a->dres, 0, (size_t)N * C * sizeof(float));
    tl_layernorm_backward(a->dres, tm_g(m, nf), tm_g(m, nf + 1), a->dn, xL, tm_w(m, nf), a->muf, a->rf, N, C);
    for (int l = c->L - 1; l >= 0; l--) {
        tm_layer_acts *la = &a->l[l];
        float *x = a->xs + (size_t)l * N * C;
        /* x' = h + s Wfp^T + bfp: dres is dx' and becomes dh */
        TM_TIMED(t_linear, tl_linear_backward(a->ds, false, G(TG_FPW), G(TG_FPB), a->dres, la->s, W(TG_FPW), N, F, C));
        tl_gelu_backward(a->ds, a->ds, la->g, (int64_t)N * F);
        TM_TIMED(t_linear, tl_linear_backward(a->dn, false, G(TG_FCW), G(TG_FCB), a->ds, la->n2, W(TG_FCW), N, C, F));
        tl_layernorm_backward(a->dres, G(TG_LN2W), G(TG_LN2B), a->dn, la->h, W(TG_LN2W), la->mu2, la->r2, N, C);
        /* h = x + a Wproj^T + bproj: dres is dh and becomes dx */
        TM_TIMED(t_linear, tl_linear_backward(a->da, false, G(TG_PROJW), G(TG_PROJB), a->dres, la->a, W(TG_PROJW), N, C, C));
        TM_TIMED(t_attn, tl_attention_backward(a->dq, a->dk, a->dv, a->dscratch, a->da, la->P, la->q, la->k, la->v, B, T, c->nh, c->nh, c->hd));
        TM_TIMED(t_linear, tl_linear_backward(a->dn, false, G(TG_QKVW), G(TG_QKVB), a->dq, la->n1, W(TG_QKVW), N, C, C);
                 tl_linear_backward(a->dn, true, G(TG_QKVW) + CC, G(TG_QKVB) + C, a->dk, la->n1, W(TG_QKVW) + CC, N, C, C);
                 tl_linear_backward(a->dn, true, G(TG_QKVW) + 2 * CC, G(TG_QKVB) + 2 * C, a->dv, la->n1, W(TG_QKVW) + 2 * CC, N, C, C));
        tl_layernorm_backward(a->dres, G(TG_LN1W), G(TG_LN1B), a->dn, x, W(TG_LN1W), la->mu1, la->r1, N, C);
    }
    tl_embed_backward(tm_g(m, tm_idx_embed(m)), a->dres, ids, N, C);
    tl_pos_backward(tm_g(m, tm_idx_pos(m)), a->dres, B, T, C);
#undef W
#undef G
}
