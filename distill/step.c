/* The Llama forward and backward over a batch (see step.h). Per layer l with residual stream x:
 *   n1 = rmsnorm(x); q,k,v = n1 Wq^T, n1 Wk^T, n1 Wv^T; rope(q, k); a = attention(q, k, v)
 *   h = x + a Wo^T; n2 = rmsnorm(h); s = silu(n2 Wg^T) * (n2 Wu^T); x' = h + s Wd^T
 * then logits = rmsnorm(x_L) Whead^T. The backward walks the same steps in reverse, the residual
 * gradient accumulating in one buffer. */
#define _POSIX_C_SOURCE 200809L
#include "distill/step.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "distill/layers.h"

typedef struct {
    float *n1, *r1, *q, *k, *v, *P, *a, *h, *n2, *r2, *g, *u, *s;
} layer_acts;

struct tm_acts {
    int B, T, N;
    float *xs;     /* [L+1, N, C] residual stream entering each layer, then the last layer's output */
    layer_acts *l; /* per layer */
    float *nf, *rf, *logits;
    /* backward scratch */
    float *dres, *dn, *dq, *dk, *dv, *da, *dg, *du, *ds, *dscratch;
    float *cs, *sn; /* RoPE tables [T, hd/2] */
    float *block;   /* the one allocation everything points into */
};

smelt_err *tm_acts_new(const tm_config *c, int B, int T, tm_acts **out)
{
    *out = NULL;
    tm_acts *a = calloc(1, sizeof *a);
    if (!a) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    a->B = B, a->T = T, a->N = B * T;
    size_t N = (size_t)a->N, C = (size_t)c->C, QD = (size_t)c->nh * c->hd, KVD = (size_t)c->nkv * c->hd, F = (size_t)c->F, V = (size_t)c->V;
    size_t PP = (size_t)B * c->nh * T * T;
    size_t per_layer = 2 * N * C + 2 * N + 2 * QD * N + 2 * KVD * N + PP + N * C + 3 * N * F;
    size_t total = (size_t)(c->L + 1) * N * C + (size_t)c->L * per_layer + N * C + N + N * V + /* backward */ 2 * N * C + QD * N + 2 * KVD * N +
                   QD * N + 3 * N * F + (size_t)B * c->nkv * T * T + (size_t)T * c->hd;
    a->l = calloc((size_t)c->L ? (size_t)c->L : 1, sizeof *a->l);
    a->block = malloc(total * sizeof(float));
    if (!a->l || !a->block) {
        tm_acts_free(a);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory for the activations of a batch of %d x %d tokens (%zu MB)", B, T, total * 4 >> 20);
    }
    float *p = a->block;
#define TAKE(n) (p += (n), p - (n))
    a->xs = TAKE((size_t)(c->L + 1) * N * C);
    for (int l = 0; l < c->L; l++) {
        layer_acts *la = &a->l[l];
        la->n1 = TAKE(N * C), la->r1 = TAKE(N), la->q = TAKE(N * QD), la->k = TAKE(N * KVD), la->v = TAKE(N * KVD), la->P = TAKE(PP);
        la->a = TAKE(N * QD), la->h = TAKE(N * C), la->n2 = TAKE(N * C), la->r2 = TAKE(N), la->g = TAKE(N * F), la->u = TAKE(N * F), la->s = TAKE(N * F);
    }
    a->nf = TAKE(N * C), a->rf = TAKE(N), a->logits = TAKE(N * V);
    a->dres = TAKE(N * C), a->dn = TAKE(N * C), a->dq = TAKE(N * QD), a->dk = TAKE(N * KVD), a->dv = TAKE(N * KVD), a->da = TAKE(N * QD);
    a->dg = TAKE(N * F), a->du = TAKE(N * F), a->ds = TAKE(N * F), a->dscratch = TAKE((size_t)B * c->nkv * T * T);
    a->cs = TAKE((size_t)T * c->hd / 2), a->sn = TAKE((size_t)T * c->hd / 2);
#undef TAKE
    tl_rope_tables(a->cs, a->sn, T, c->hd, c->theta);
    *out = a;
    return NULL;
}

void tm_acts_free(tm_acts *a)
{
    if (!a) return;
    free(a->l);
    free(a->block);
    free(a);
}

const float *tm_acts_logits(const tm_acts *a) { return a->logits; }

#define TIMED(field, stmt)                                   \
    do {                                                     \
        double t0_ = smelt_now();                            \
        stmt;                                                \
        if (timing) timing->field += smelt_now() - t0_;      \
    } while (0)

void tm_forward_backward(tm_model *m, tm_acts *a, const int32_t *ids, const int32_t *targets, const float *teacher, float alpha, float temp,
                         float grad_scale, tl_loss_sums *sums, tm_timing *timing)
{
    const tm_config *c = &m->c;
    int N = a->N, B = a->B, T = a->T, C = c->C, QD = c->nh * c->hd, KVD = c->nkv * c->hd, F = c->F, V = c->V;
    double t_start = smelt_now(), t_known0 = timing ? timing->t_linear + timing->t_attn + timing->t_loss : 0;
    tl_embed_forward(a->xs, ids, tm_w(m, tm_idx_embed(m)), N, C);
    for (int l = 0; l < c->L; l++) {
        layer_acts *la = &a->l[l];
        float *x = a->xs + (size_t)l * N * C, *xn = x + (size_t)N * C;
        tl_rmsnorm_forward(la->n1, la->r1, x, tm_w(m, tm_idx_layer(m, l, TM_LN1)), N, C, c->eps);
        TIMED(t_linear, tl_linear_forward(la->q, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WQ)), N, C, QD);
              tl_linear_forward(la->k, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WK)), N, C, KVD);
              tl_linear_forward(la->v, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WV)), N, C, KVD));
        tl_rope(la->q, a->cs, a->sn, B, T, c->nh, c->hd, false);
        tl_rope(la->k, a->cs, a->sn, B, T, c->nkv, c->hd, false);
        TIMED(t_attn, tl_attention_forward(la->a, la->P, la->q, la->k, la->v, B, T, c->nh, c->nkv, c->hd));
        TIMED(t_linear, tl_linear_forward(la->h, la->a, tm_w(m, tm_idx_layer(m, l, TM_WO)), N, QD, C));
        tl_add(la->h, la->h, x, (int64_t)N * C);
        tl_rmsnorm_forward(la->n2, la->r2, la->h, tm_w(m, tm_idx_layer(m, l, TM_LN2)), N, C, c->eps);
        TIMED(t_linear, tl_linear_forward(la->g, la->n2, tm_w(m, tm_idx_layer(m, l, TM_WG)), N, C, F);
              tl_linear_forward(la->u, la->n2, tm_w(m, tm_idx_layer(m, l, TM_WU)), N, C, F));
        tl_swiglu_forward(la->s, la->g, la->u, (int64_t)N * F);
        TIMED(t_linear, tl_linear_forward(xn, la->s, tm_w(m, tm_idx_layer(m, l, TM_WD)), N, F, C));
        tl_add(xn, xn, la->h, (int64_t)N * C);
    }
    float *xL = a->xs + (size_t)c->L * N * C;
    tl_rmsnorm_forward(a->nf, a->rf, xL, tm_w(m, tm_idx_norm(m)), N, C, c->eps);
    TIMED(t_linear, tl_linear_forward(a->logits, a->nf, tm_w(m, tm_idx_head(m)), N, C, V));
    TIMED(t_loss, tl_loss(a->logits, targets, teacher, N, V, alpha, temp, grad_scale, sums));
    if (grad_scale != 0) {
        /* logits now hold their gradient */
        TIMED(t_linear, tl_linear_backward(a->dn, false, tm_g(m, tm_idx_head(m)), a->logits, a->nf, tm_w(m, tm_idx_head(m)), N, C, V));
        memset(a->dres, 0, (size_t)N * C * sizeof(float));
        tl_rmsnorm_backward(a->dres, tm_g(m, tm_idx_norm(m)), a->dn, xL, tm_w(m, tm_idx_norm(m)), a->rf, N, C);
        for (int l = c->L - 1; l >= 0; l--) {
            layer_acts *la = &a->l[l];
            float *x = a->xs + (size_t)l * N * C;
            /* x' = h + s Wd^T: dres is dx' and becomes dh */
            TIMED(t_linear, tl_linear_backward(a->ds, false, tm_g(m, tm_idx_layer(m, l, TM_WD)), a->dres, la->s, tm_w(m, tm_idx_layer(m, l, TM_WD)), N, F, C));
            tl_swiglu_backward(a->dg, a->du, a->ds, la->g, la->u, (int64_t)N * F);
            TIMED(t_linear, tl_linear_backward(a->dn, false, tm_g(m, tm_idx_layer(m, l, TM_WG)), a->dg, la->n2, tm_w(m, tm_idx_layer(m, l, TM_WG)), N, C, F);
                  tl_linear_backward(a->dn, true, tm_g(m, tm_idx_layer(m, l, TM_WU)), a->du, la->n2, tm_w(m, tm_idx_layer(m, l, TM_WU)), N, C, F));
            tl_rmsnorm_backward(a->dres, tm_g(m, tm_idx_layer(m, l, TM_LN2)), a->dn, la->h, tm_w(m, tm_idx_layer(m, l, TM_LN2)), la->r2, N, C);
            /* h = x + a Wo^T: dres is dh and becomes dx */
            TIMED(t_linear, tl_linear_backward(a->da, false, tm_g(m, tm_idx_layer(m, l, TM_WO)), a->dres, la->a, tm_w(m, tm_idx_layer(m, l, TM_WO)), N, QD, C));
            TIMED(t_attn, tl_attention_backward(a->dq, a->dk, a->dv, a->dscratch, a->da, la->P, la->q, la->k, la->v, B, T, c->nh, c->nkv, c->hd));
            tl_rope(a->dq, a->cs, a->sn, B, T, c->nh, c->hd, true);
            tl_rope(a->dk, a->cs, a->sn, B, T, c->nkv, c->hd, true);
            TIMED(t_linear, tl_linear_backward(a->dn, false, tm_g(m, tm_idx_layer(m, l, TM_WQ)), a->dq, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WQ)), N, C, QD);
                  tl_linear_backward(a->dn, true, tm_g(m, tm_idx_layer(m, l, TM_WK)), a->dk, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WK)), N, C, KVD);
                  tl_linear_backward(a->dn, true, tm_g(m, tm_idx_layer(m, l, TM_WV)), a->dv, la->n1, tm_w(m, tm_idx_layer(m, l, TM_WV)), N, C, KVD));
            tl_rmsnorm_backward(a->dres, tm_g(m, tm_idx_layer(m, l, TM_LN1)), a->dn, x, tm_w(m, tm_idx_layer(m, l, TM_LN1)), la->r1, N, C);
        }
        tl_embed_backward(tm_g(m, tm_idx_embed(m)), a->dres, ids, N, C);
    }
    if (timing) timing->t_other += (smelt_now() - t_start) - (timing->t_linear + timing->t_attn + timing->t_loss - t_known0);
}
