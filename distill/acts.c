/* The activation buffers of a batch, one allocation laid out for the model's architecture (see
 * acts.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/acts.h"

#include <stdlib.h>

#include "distill/layers.h"

smelt_err *tm_acts_new(const tm_config *c, int B, int T, tm_acts **out)
{
    *out = NULL;
    tm_acts *a = calloc(1, sizeof *a);
    if (!a) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    bool g2 = c->arch == TM_GPT2;
    a->B = B, a->T = T, a->N = B * T;
    size_t N = (size_t)a->N, C = (size_t)c->C, QD = (size_t)c->nh * c->hd, KVD = (size_t)c->nkv * c->hd, F = (size_t)c->F, V = (size_t)c->V;
    size_t PP = (size_t)B * c->nh * T * T, U = g2 ? 0 : N * F, MU = g2 ? N : 0, ROPE = g2 ? 0 : (size_t)T * (c->hd / 2);
    size_t per_layer = 2 * N * C + 2 * N + 2 * MU + QD * N + 2 * KVD * N + PP + QD * N + N * C + 2 * N * F + U;
    size_t total = (size_t)(c->L + 1) * N * C + (size_t)c->L * per_layer + N * C + N + MU + N * V + /* backward */ 2 * N * C + QD * N + 2 * KVD * N +
                   QD * N + 2 * N * F + U + (size_t)B * c->nkv * T * T + 2 * ROPE;
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
        tm_layer_acts *la = &a->l[l];
        la->n1 = TAKE(N * C), la->mu1 = TAKE(MU), la->r1 = TAKE(N), la->q = TAKE(N * QD), la->k = TAKE(N * KVD), la->v = TAKE(N * KVD), la->P = TAKE(PP);
        la->a = TAKE(N * QD), la->h = TAKE(N * C), la->n2 = TAKE(N * C), la->mu2 = TAKE(MU), la->r2 = TAKE(N), la->g = TAKE(N * F), la->u = TAKE(U),
        la->s = TAKE(N * F);
    }
    a->nf = TAKE(N * C), a->muf = TAKE(MU), a->rf = TAKE(N), a->logits = TAKE(N * V);
    a->dres = TAKE(N * C), a->dn = TAKE(N * C), a->dq = TAKE(N * QD), a->dk = TAKE(N * KVD), a->dv = TAKE(N * KVD), a->da = TAKE(N * QD);
    a->dg = TAKE(N * F), a->du = TAKE(U), a->ds = TAKE(N * F), a->dscratch = TAKE((size_t)B * c->nkv * T * T);
    a->cs = TAKE(ROPE), a->sn = TAKE(ROPE);
#undef TAKE
    if (!g2) tl_rope_tables(a->cs, a->sn, T, c->hd, c->theta);
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
