/* Mixture-weighted, shuffled training windows (see data.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/rng.h"
#include "distill/data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evals/perplexity.h"

typedef struct {
    int32_t *ids;
    size_t n;
    int64_t n_windows;
    int64_t *perm; /* the current epoch's window order */
    int64_t perm_epoch;
    double weight;
} domain;

struct dd_loader {
    domain d[DD_MAX_DOMAINS];
    int n, T;
    uint64_t seed;
    dd_state st;
    double total_weight;
};

/* A Fisher-Yates permutation of the domain's windows for an epoch. */
static void make_perm(dd_loader *l, int di, int64_t epoch)
{
    domain *d = &l->d[di];
    uint64_t s = l->seed ^ (0x5851f42d4c957f2dull * (uint64_t)(di + 1)) ^ (0x14057b7ef767814full * (uint64_t)(epoch + 1));
    for (int64_t i = 0; i < d->n_windows; i++) d->perm[i] = i;
    for (int64_t i = d->n_windows - 1; i > 0; i--) {
        int64_t j = (int64_t)(smelt_splitmix64(&s) % (uint64_t)(i + 1)), t = d->perm[i];
        d->perm[i] = d->perm[j];
        d->perm[j] = t;
    }
    d->perm_epoch = epoch;
}

smelt_err *dd_open(const char *const *specs, int n, const smelt_tokenizer *tok, int32_t eos, int T, uint64_t seed, dd_loader **out)
{
    *out = NULL;
    if (n < 1) return SMELT_ERR(SMELT_E_INVALID, "no training data: give --data FILE[:WEIGHT]");
    if (n > DD_MAX_DOMAINS) return SMELT_ERR(SMELT_E_INVALID, "%d data files, at most %d", n, DD_MAX_DOMAINS);
    dd_loader *l = calloc(1, sizeof *l);
    if (!l) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    l->n = n, l->T = T, l->seed = seed;
    l->st.rng = seed ^ 0x2545f4914f6cdd1dull;
    smelt_err *err = NULL;
    for (int i = 0; i < n && !err; i++) {
        char *path = strdup(specs[i]), *colon = path ? strrchr(path, ':') : NULL;
        domain *d = &l->d[i];
        if (!path) {
            err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            break;
        }
        d->weight = 1;
        if (colon) {
            char *end;
            errno = 0;
            double w = strtod(colon + 1, &end);
            if (errno || end == colon + 1 || *end || !(w > 0) || w > 1e9) err = SMELT_ERR(SMELT_E_INVALID, "--data '%s': weight '%s' must be a positive number", specs[i], colon + 1);
            d->weight = w;
            *colon = 0;
        }
        char *text = NULL;
        size_t len = 0;
        if (!err) err = smelt_read_file(path, (size_t)1 << 32, &text, &len);
        if (!err) err = smelt_err_wrap(ppl_tokens_from_text(tok, text, len, eos, &d->ids, &d->n), "%s", path);
        if (!err && d->n < (size_t)T + 1)
            err = SMELT_ERR(SMELT_E_INVALID, "%s: %zu tokens, not one whole training window of %d (empty data?)", path, d->n, T + 1);
        if (!err) {
            d->n_windows = (int64_t)((d->n - 1) / (size_t)T);
            d->perm = malloc((size_t)d->n_windows * sizeof *d->perm);
            if (!d->perm) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            else make_perm(l, i, 0);
        }
        l->total_weight += d->weight;
        free(text);
        free(path);
    }
    if (err) {
        dd_free(l);
        return err;
    }
    *out = l;
    return NULL;
}

void dd_free(dd_loader *l)
{
    if (!l) return;
    for (int i = 0; i < l->n; i++) free(l->d[i].ids), free(l->d[i].perm);
    free(l);
}

void dd_next(dd_loader *l, int B, int32_t *ids, int32_t *targets)
{
    int T = l->T;
    for (int b = 0; b < B; b++) {
        double u = (double)(smelt_splitmix64(&l->st.rng) >> 11) / 9007199254740992.0 * l->total_weight;
        int di = 0;
        while (di < l->n - 1 && u >= l->d[di].weight) u -= l->d[di++].weight;
        domain *d = &l->d[di];
        if (l->st.cursor[di] >= d->n_windows) l->st.cursor[di] = 0, l->st.epoch[di]++;
        if (d->perm_epoch != l->st.epoch[di]) make_perm(l, di, l->st.epoch[di]);
        const int32_t *w = d->ids + (size_t)d->perm[l->st.cursor[di]++] * (size_t)T;
        memcpy(ids + (size_t)b * T, w, (size_t)T * sizeof *ids);
        memcpy(targets + (size_t)b * T, w + 1, (size_t)T * sizeof *targets);
    }
}

int dd_n_domains(const dd_loader *l) { return l->n; }
size_t dd_domain_tokens(const dd_loader *l, int i) { return l->d[i].n; }
dd_state dd_get_state(const dd_loader *l) { return l->st; }

void dd_set_state(dd_loader *l, const dd_state *s)
{
    l->st = *s;
    for (int i = 0; i < l->n; i++)
        if (l->d[i].perm_epoch != s->epoch[i]) make_perm(l, i, s->epoch[i]);
}
