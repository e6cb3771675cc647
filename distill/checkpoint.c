/* Writing and reading training checkpoints (see checkpoint.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK_MAGIC "SMELTCKP"
#define CK_VERSION 1

static json_t *state_json(const dd_state *ds)
{
    char rng[24];
    snprintf(rng, sizeof rng, "%016" PRIx64, ds->rng);
    json_t *cur = json_array(), *ep = json_array();
    for (int i = 0; i < DD_MAX_DOMAINS; i++) {
        json_array_append_new(cur, json_integer(ds->cursor[i]));
        json_array_append_new(ep, json_integer(ds->epoch[i]));
    }
    return json_pack("{s:s, s:o, s:o}", "rng", rng, "cursor", cur, "epoch", ep);
}

smelt_err *ck_save(const char *path, const tm_model *m, const adamw_state *s, int64_t step, double loss, const dd_state *ds, const json_t *fingerprint)
{
    size_t n = m->n_params, nb = n * sizeof(float);
    smelt_sha256 *h = smelt_sha256_begin();
    if (!h) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_sha256_update(h, m->w, nb);
    smelt_sha256_update(h, s->m, nb);
    smelt_sha256_update(h, s->v, nb);
    char hex[65];
    smelt_sha256_end(h, hex);
    json_t *hdr = json_pack("{s:i, s:I, s:f, s:I, s:I, s:o, s:O, s:s}", "version", CK_VERSION, "step", (json_int_t)step, "loss", loss, "adam_t", (json_int_t)s->t, "n_params",
                            (json_int_t)n, "data", state_json(ds), "fingerprint", fingerprint, "sha256", hex);
    char *text = hdr ? json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(hdr);
    if (!text) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    uint64_t len = strlen(text);
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(len >> (8 * i));
    smelt_atomic a;
    smelt_err *err = smelt_atomic_open(path, &a);
    if (!err) {
        bool ok = fwrite(CK_MAGIC, 1, 8, a.fp) == 8 && fwrite(le, 1, 8, a.fp) == 8 && fwrite(text, 1, len, a.fp) == len && fwrite(m->w, 1, nb, a.fp) == nb &&
                  fwrite(s->m, 1, nb, a.fp) == nb && fwrite(s->v, 1, nb, a.fp) == nb;
        if (!ok) {
            smelt_atomic_abort(&a);
            err = SMELT_ERR(SMELT_E_IO, "%s: write failed", path);
        } else {
            err = smelt_atomic_commit(&a);
        }
    }
    free(text);
    return err;
}

/* The first key whose values differ between two fingerprints (or NULL when equal). */
static const char *first_difference(const json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) {
        if (!json_equal(v, json_object_get(b, k))) return k;
    }
    json_object_foreach((json_t *)b, k, v) {
        if (!json_object_get(a, k)) return k;
    }
    return NULL;
}

smelt_err *ck_load(const char *path, tm_model *m, adamw_state *s, int64_t *step, double *loss, dd_state *ds, const json_t *fingerprint)
{
    smelt_map map;
    SMELT_TRY(smelt_map_file(path, &map));
    const uint8_t *p = map.data;
    smelt_err *err = NULL;
    json_t *hdr = NULL;
    uint64_t len = 0;
    size_t n = m->n_params, nb = n * sizeof(float);
    if (map.size < 16 || memcmp(p, CK_MAGIC, 8) != 0) {
        err = SMELT_ERR(map.size < 16 ? SMELT_E_TRUNCATED : SMELT_E_CORRUPT, "%s: not a smelt training checkpoint (no 'SMELTCKP' magic)", path);
        goto done;
    }
    for (int i = 0; i < 8; i++) len |= (uint64_t)p[8 + i] << (8 * i);
    if (len > map.size - 16) {
        err = SMELT_ERR(SMELT_E_TRUNCATED, "%s: header of %" PRIu64 " bytes runs past the end of the file (%zu bytes)", path, len, map.size);
        goto done;
    }
    json_error_t je;
    hdr = json_loadb((const char *)p + 16, len, 0, &je);
    if (!hdr || !json_is_object(hdr)) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: header is not a JSON object: %s", path, hdr ? "" : je.text);
        goto done;
    }
    json_t *ver = json_object_get(hdr, "version"), *st = json_object_get(hdr, "step"), *at = json_object_get(hdr, "adam_t"),
           *np = json_object_get(hdr, "n_params"), *data = json_object_get(hdr, "data"), *fp = json_object_get(hdr, "fingerprint");
    const char *hex = json_string_value(json_object_get(hdr, "sha256"));
    if (!json_is_integer(ver) || json_integer_value(ver) != CK_VERSION) {
        err = SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: checkpoint format version %s, expected %d", path, json_is_integer(ver) ? "other" : "missing", CK_VERSION);
        goto done;
    }
    if (!json_is_integer(st) || !json_is_integer(at) || !json_is_integer(np) || !json_is_object(data) || !json_is_object(fp) || !hex || json_integer_value(st) < 0) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: header lacks 'step', 'adam_t', 'n_params', 'data', 'fingerprint' or 'sha256'", path);
        goto done;
    }
    const char *diff = first_difference(fingerprint, fp);
    if (diff) {
        err = SMELT_ERR(SMELT_E_INVALID, "%s: checkpoint belongs to another run: '%s' differs from this run's options", path, diff);
        goto done;
    }
    if ((uint64_t)json_integer_value(np) != n) {
        err = SMELT_ERR(SMELT_E_INVALID, "%s: checkpoint holds %" JSON_INTEGER_FORMAT " parameters, the student has %zu", path, json_integer_value(np), n);
        goto done;
    }
    if (map.size - 16 - len != 3 * nb) {
        err = SMELT_ERR(map.size - 16 - len < 3 * nb ? SMELT_E_TRUNCATED : SMELT_E_CORRUPT, "%s: payload of %zu bytes, expected %zu", path,
                        (size_t)(map.size - 16 - len), 3 * nb);
        goto done;
    }
    const uint8_t *payload = p + 16 + len;
    char got[65];
    smelt_sha256_hex(payload, 3 * nb, got);
    if (strcmp(got, hex) != 0) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: payload SHA-256 %.12s... does not match the header's %.12s...", path, got, hex);
        goto done;
    }
    dd_state d = {0};
    const char *rng = json_string_value(json_object_get(data, "rng"));
    json_t *cur = json_object_get(data, "cursor"), *ep = json_object_get(data, "epoch");
    if (!rng || sscanf(rng, "%" SCNx64, &d.rng) != 1 || json_array_size(cur) != DD_MAX_DOMAINS || json_array_size(ep) != DD_MAX_DOMAINS) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: header 'data' is not a data loader state", path);
        goto done;
    }
    for (int i = 0; i < DD_MAX_DOMAINS; i++) {
        d.cursor[i] = json_integer_value(json_array_get(cur, (size_t)i));
        d.epoch[i] = json_integer_value(json_array_get(ep, (size_t)i));
        if (d.cursor[i] < 0 || d.epoch[i] < 0) {
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s: header 'data' has a negative position", path);
            goto done;
        }
    }
    memcpy(m->w, payload, nb);
    memcpy(s->m, payload + nb, nb);
    memcpy(s->v, payload + 2 * nb, nb);
    s->t = json_integer_value(at);
    *step = json_integer_value(st);
    *loss = json_number_value(json_object_get(hdr, "loss"));
    *ds = d;
done:
    json_decref(hdr);
    smelt_unmap(&map);
    return err;
}
