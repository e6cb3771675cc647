/* manifest.json: what an artifact holds and where it came from.
 *
 *   {"format": "smelt", "format_version": 1, "data_offset": 64, "tensors_bin_bytes": N,
 *    "kind": "llm" | "graph", "arch": "llama", "target": "any",
 *    "config": {vocab_size, hidden, ...} | null,
 *    "tensors":   [{"name", "dtype", "shape", "offset", "nbytes", "sha256", "quant": null | {...}}],
 *    "constants": [same, for TENSOR attributes, referred to by index from graph.json],
 *    "meta": {free-form model metadata},
 *    "provenance": {"sources": [{"path", "bytes", "sha256"}], "smelt_version", "command", "created",
 *                   "parent": the provenance of the artifact this one was made from, if any}}
 *
 * Offsets are from the start of tensors.bin, which starts at data_offset in the file. The parser
 * checks every field's type and range, every offset and size against tensors.bin's real size, and
 * that no two byte ranges overlap, before any tensor points into the mapping.
 */
#define _POSIX_C_SOURCE 200809L
#include "formats/artifact_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The LLM hyper-parameters, one row a field, so the writer and the reader cannot drift apart. */
typedef enum { CF_INT, CF_DOUBLE, CF_BOOL, CF_STR } cfg_type;
static const struct {
    const char *key;
    cfg_type type;
    size_t off;
    size_t cap; /* CF_STR: the char array's size */
} cfg_fields[] = {
#define INT_FIELD(k, f) {k, CF_INT, offsetof(smelt_llm_config, f), 0}
    INT_FIELD("vocab_size", vocab_size),
    INT_FIELD("hidden", hidden),
    INT_FIELD("n_layers", n_layers),
    INT_FIELD("n_heads", n_heads),
    INT_FIELD("n_kv_heads", n_kv_heads),
    INT_FIELD("head_dim", head_dim),
    INT_FIELD("ffn", ffn),
    INT_FIELD("max_pos", max_pos),
    INT_FIELD("bos_id", bos_id),
    INT_FIELD("eos_id", eos_id),
#undef INT_FIELD
    {"rope_theta", CF_DOUBLE, offsetof(smelt_llm_config, rope_theta), 0},
    {"norm_eps", CF_DOUBLE, offsetof(smelt_llm_config, norm_eps), 0},
    {"tied_embeddings", CF_BOOL, offsetof(smelt_llm_config, tied_embeddings), 0},
    {"attn_qkv_bias", CF_BOOL, offsetof(smelt_llm_config, attn_qkv_bias), 0},
    {"attn_out_bias", CF_BOOL, offsetof(smelt_llm_config, attn_out_bias), 0},
    {"mlp_bias", CF_BOOL, offsetof(smelt_llm_config, mlp_bias), 0},
    {"act", CF_STR, offsetof(smelt_llm_config, act), sizeof((smelt_llm_config *)0)->act},
    {"norm", CF_STR, offsetof(smelt_llm_config, norm), sizeof((smelt_llm_config *)0)->norm},
    {"pos", CF_STR, offsetof(smelt_llm_config, pos), sizeof((smelt_llm_config *)0)->pos},
};
#define N_CFG_FIELDS (sizeof cfg_fields / sizeof cfg_fields[0])

static const char *quant_kind_name(smelt_quant_kind k)
{
    return k == SMELT_QUANT_PER_CHANNEL ? "per_channel" : k == SMELT_QUANT_GROUP ? "group" : "none";
}

/* ---- building ---- */

static json_t *config_build(art_jb *b, const smelt_llm_config *c)
{
    json_t *o = json_object();
    for (size_t i = 0; i < N_CFG_FIELDS; i++) {
        const char *p = (const char *)c + cfg_fields[i].off;
        json_t *v = NULL;
        switch (cfg_fields[i].type) {
        case CF_INT: v = json_integer(*(const int *)p); break;
        case CF_DOUBLE: v = json_real(*(const double *)p); break;
        case CF_BOOL: v = json_boolean(*(const bool *)p); break;
        case CF_STR: v = art_jb_str(b, cfg_fields[i].key, p); break;
        }
        art_jb_set(b, o, cfg_fields[i].key, v);
    }
    return o;
}

static json_t *quant_build(art_jb *b, const smelt_tensor *t)
{
    const smelt_quant *q = &t->quant;
    if (q->kind == SMELT_QUANT_NONE) return json_null();
    json_t *o = json_object();
    art_jb_set(b, o, "kind", json_string(quant_kind_name(q->kind)));
    art_jb_set(b, o, "bits", json_integer(q->bits));
    art_jb_set(b, o, "axis", json_integer(q->axis));
    art_jb_set(b, o, "group_size", json_integer(q->group_size));
    art_jb_set(b, o, "symmetric", json_boolean(q->symmetric));
    art_jb_set(b, o, "scale", art_jb_str(b, "a scale tensor name", q->scale));
    art_jb_set(b, o, "zero", q->zero ? art_jb_str(b, "a zero-point tensor name", q->zero) : json_null());
    art_jb_set(b, o, "orig_dtype", q->orig_dtype ? json_string(smelt_dtype_name(q->orig_dtype)) : json_null());
    return o;
}

static json_t *blob_build(art_jb *b, const art_blob *bl)
{
    const smelt_tensor *t = bl->t;
    json_t *o = json_object();
    art_jb_set(b, o, "name", art_jb_str(b, "a tensor name", bl->name));
    art_jb_set(b, o, "dtype", json_string(smelt_dtype_name(t->dtype)));
    json_t *shape = json_array();
    for (int d = 0; d < t->ndim; d++) art_jb_append(b, shape, art_jb_int(b, t->shape[d]));
    art_jb_set(b, o, "shape", shape);
    art_jb_set(b, o, "offset", art_jb_int(b, (int64_t)bl->offset));
    art_jb_set(b, o, "nbytes", art_jb_int(b, (int64_t)bl->nbytes));
    art_jb_set(b, o, "sha256", json_string(bl->sha256));
    art_jb_set(b, o, "quant", quant_build(b, t));
    return o;
}

smelt_err *art_manifest_build(const char *path, const smelt_model *m, const art_blob *blobs, int n_blobs, uint64_t data_offset,
                              const artifact_write_opts *opts, const char *created, json_t **out)
{
    *out = NULL;
    art_jb b = {path, NULL};
    uint64_t bin_size = 0;
    for (int i = 0; i < n_blobs; i++)
        if (blobs[i].offset + blobs[i].nbytes > bin_size) bin_size = blobs[i].offset + blobs[i].nbytes;

    json_t *o = json_object();
    art_jb_set(&b, o, "format", json_string("smelt"));
    art_jb_set(&b, o, "format_version", json_integer(SMELT_ARTIFACT_FORMAT_VERSION));
    art_jb_set(&b, o, "data_offset", art_jb_int(&b, (int64_t)data_offset));
    art_jb_set(&b, o, "tensors_bin_bytes", art_jb_int(&b, (int64_t)bin_size));
    art_jb_set(&b, o, "kind", json_string(m->kind == SMELT_KIND_LLM ? "llm" : "graph"));
    art_jb_set(&b, o, "arch", art_jb_str(&b, "the architecture", m->arch));
    art_jb_set(&b, o, "target", art_jb_str(&b, "the target", opts && opts->target ? opts->target : "any"));
    art_jb_set(&b, o, "config", m->kind == SMELT_KIND_LLM ? config_build(&b, &m->llm) : json_null());
    json_t *tensors = json_array(), *consts = json_array();
    for (int i = 0; i < n_blobs; i++) art_jb_append(&b, strcmp(blobs[i].list, "tensors") == 0 ? tensors : consts, blob_build(&b, &blobs[i]));
    art_jb_set(&b, o, "tensors", tensors);
    art_jb_set(&b, o, "constants", consts);

    /* meta keeps everything but the provenance keys, which get their own object. */
    json_t *meta = json_deep_copy(m->meta);
    if (meta) {
        json_object_del(meta, "sources");
        json_object_del(meta, "parent_provenance");
    }
    art_jb_set(&b, o, "meta", meta);
    json_t *prov = json_object();
    json_t *sources = json_object_get(m->meta, "sources");
    art_jb_set(&b, prov, "sources", sources ? json_deep_copy(sources) : json_array());
    art_jb_set(&b, prov, "smelt_version", art_jb_str(&b, "the version", opts && opts->smelt_version ? opts->smelt_version : ""));
    art_jb_set(&b, prov, "command", art_jb_str(&b, "the command line", opts && opts->command ? opts->command : ""));
    art_jb_set(&b, prov, "created", json_string(created));
    json_t *parent = json_object_get(m->meta, "parent_provenance");
    if (parent) art_jb_set(&b, prov, "parent", json_deep_copy(parent));
    art_jb_set(&b, o, "provenance", prov);
    if (b.err) {
        json_decref(o);
        return b.err;
    }
    *out = o;
    return NULL;
}

/* ---- parsing ---- */

smelt_err *art_check_quant(const smelt_model *m, const smelt_tensor *t)
{
    const smelt_quant *q = &t->quant;
    if (q->kind == SMELT_QUANT_NONE) return NULL;
    bool int8 = t->dtype == SMELT_DT_I8 || t->dtype == SMELT_DT_U8, int4 = t->dtype == SMELT_DT_I4 || t->dtype == SMELT_DT_U4;
    if (!((q->bits == 8 && int8) || (q->bits == 4 && int4)))
        return SMELT_ERR(SMELT_E_CORRUPT, "quant: %d bits do not fit dtype %s (expected 8 bits with i8/u8 or 4 bits with i4/u4)", q->bits,
                         smelt_dtype_name(t->dtype));
    if (q->axis < 0 || (t->ndim > 0 && q->axis >= t->ndim))
        return SMELT_ERR(SMELT_E_CORRUPT, "quant: axis %d is out of range for %d dimensions", q->axis, t->ndim);
    if (q->kind == SMELT_QUANT_GROUP && q->group_size <= 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "quant: group_size %d, expected a positive group size", q->group_size);
    if (!q->symmetric && !q->zero) return SMELT_ERR(SMELT_E_CORRUPT, "quant: asymmetric but no zero-point tensor named");
    if (q->symmetric && q->zero) return SMELT_ERR(SMELT_E_CORRUPT, "quant: symmetric but a zero-point tensor '%s' is named", q->zero);
    if (m && !smelt_model_find(m, q->scale)) return SMELT_ERR(SMELT_E_CORRUPT, "quant: scale tensor '%s' is not in the artifact", q->scale);
    if (m && q->zero && !smelt_model_find(m, q->zero))
        return SMELT_ERR(SMELT_E_CORRUPT, "quant: zero-point tensor '%s' is not in the artifact", q->zero);
    return NULL;
}

static smelt_err *quant_parse(const char *loc, const json_t *o, smelt_quant *q)
{
    json_t *v;
    SMELT_TRY(art_get(loc, o, "quant", &v));
    if (json_is_null(v)) return NULL;
    if (!json_is_object(v)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'quant' is neither null nor an object", loc);
    const char *kind, *scale, *zero;
    int64_t bits, axis, group;
    bool sym;
    smelt_dtype orig;
    SMELT_TRY(art_get_str(loc, v, "kind", &kind));
    if (strcmp(kind, "per_channel") == 0) q->kind = SMELT_QUANT_PER_CHANNEL;
    else if (strcmp(kind, "group") == 0) q->kind = SMELT_QUANT_GROUP;
    else return SMELT_ERR(SMELT_E_CORRUPT, "%s: quant kind '%s', expected 'per_channel' or 'group'", loc, kind);
    SMELT_TRY(art_get_int(loc, v, "bits", 1, 64, &bits));
    SMELT_TRY(art_get_int(loc, v, "axis", 0, SMELT_MAX_DIMS - 1, &axis));
    SMELT_TRY(art_get_int(loc, v, "group_size", 0, INT32_MAX, &group));
    SMELT_TRY(art_get_bool(loc, v, "symmetric", &sym));
    SMELT_TRY(art_get_str(loc, v, "scale", &scale));
    SMELT_TRY(art_get_str_or_null(loc, v, "zero", &zero));
    SMELT_TRY(art_get_dtype(loc, v, "orig_dtype", true, &orig));
    q->bits = (int)bits;
    q->axis = (int)axis;
    q->group_size = (int)group;
    q->symmetric = sym;
    q->orig_dtype = orig;
    SMELT_TRY(art_strdup(scale, &q->scale));
    SMELT_TRY(art_strdup(zero, &q->zero));
    return NULL;
}

/* One entry of "tensors" or "constants": its header fields, checked against tensors.bin. */
typedef struct {
    const char *name;
    smelt_dtype dtype;
    int ndim;
    int64_t shape[SMELT_MAX_DIMS];
    uint64_t offset, nbytes;
    const char *sha256;
} entry_fields;

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static smelt_err *entry_parse(const char *loc, const json_t *o, uint64_t bin_size, entry_fields *e)
{
    if (!json_is_object(o)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: not an object", loc);
    json_t *shape;
    SMELT_TRY(art_get_str(loc, o, "name", &e->name));
    SMELT_TRY(art_get_dtype(loc, o, "dtype", false, &e->dtype));
    SMELT_TRY(art_get_array(loc, o, "shape", &shape));
    if (json_array_size(shape) > SMELT_MAX_DIMS)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: %zu dimensions, at most %d supported", loc, json_array_size(shape), SMELT_MAX_DIMS);
    e->ndim = (int)json_array_size(shape);
    for (int d = 0; d < e->ndim; d++) {
        json_t *v = json_array_get(shape, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: shape[%d] is not a non-negative integer", loc, d);
        e->shape[d] = json_integer_value(v);
    }
    SMELT_TRY(art_get_u64(loc, o, "offset", &e->offset));
    SMELT_TRY(art_get_u64(loc, o, "nbytes", &e->nbytes));
    SMELT_TRY(art_get_str(loc, o, "sha256", &e->sha256));
    if (!is_hex64(e->sha256)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'sha256' is not 64 lowercase hex digits", loc);
    int64_t numel = smelt_shape_numel(e->ndim, e->shape);
    size_t want = numel < 0 ? SIZE_MAX : smelt_dtype_nbytes(e->dtype, (uint64_t)numel);
    if (want == SIZE_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: shape overflows", loc);
    if (e->nbytes != want)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: nbytes %llu, expected %zu for dtype %s and its shape", loc, (unsigned long long)e->nbytes, want,
                         smelt_dtype_name(e->dtype));
    if (e->offset % ART_ALIGN != 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: offset %llu is not a multiple of %d", loc, (unsigned long long)e->offset, ART_ALIGN);
    if (e->offset > bin_size || e->nbytes > bin_size - e->offset)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: bytes [%llu, +%llu) run past the end of tensors.bin (%llu bytes)", loc, (unsigned long long)e->offset,
                         (unsigned long long)e->nbytes, (unsigned long long)bin_size);
    return NULL;
}

static int cmp_offset(const void *a, const void *b)
{
    const art_blob *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Two tensors may not share bytes: a writer that overlapped them would have tied weights that
 * quantizing one would silently change in the other. */
static smelt_err *check_overlaps(const char *path, art_blob *b, int n)
{
    qsort(b, (size_t)n, sizeof *b, cmp_offset);
    const art_blob *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (b[i].nbytes == 0) continue;
        if (prev && b[i].offset < prev->offset + prev->nbytes)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: manifest.json: %s[%d] '%s' overlaps %s[%d] '%s' in tensors.bin", path, b[i].list, b[i].index,
                             b[i].name, prev->list, prev->index, prev->name);
        prev = &b[i];
    }
    return NULL;
}

static smelt_err *config_parse(const char *path, const json_t *man, smelt_llm_config *c)
{
    char loc[256];
    snprintf(loc, sizeof loc, "%s: manifest.json: config", path);
    json_t *o;
    SMELT_TRY(art_get_object(loc, man, "config", &o));
    for (size_t i = 0; i < N_CFG_FIELDS; i++) {
        char *p = (char *)c + cfg_fields[i].off;
        const char *key = cfg_fields[i].key;
        switch (cfg_fields[i].type) {
        case CF_INT: {
            int64_t v;
            SMELT_TRY(art_get_int(loc, o, key, -1, INT32_MAX, &v));
            *(int *)p = (int)v;
            break;
        }
        case CF_DOUBLE: {
            json_t *v;
            SMELT_TRY(art_get(loc, o, key, &v));
            if (!json_is_number(v)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s' is not a number", loc, key);
            *(double *)p = json_number_value(v);
            break;
        }
        case CF_BOOL: SMELT_TRY(art_get_bool(loc, o, key, (bool *)p)); break;
        case CF_STR: {
            const char *s;
            SMELT_TRY(art_get_str(loc, o, key, &s));
            if (strlen(s) >= cfg_fields[i].cap)
                return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s' is longer than %zu characters", loc, key, cfg_fields[i].cap - 1);
            strncpy(p, s, cfg_fields[i].cap);
            break;
        }
        }
    }
    return NULL;
}

void art_consts_free(art_consts *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->t[i].name);
        free(c->t[i].quant.scale);
        free(c->t[i].quant.zero);
    }
    free(c->t);
    memset(c, 0, sizeof *c);
}

/* Parses one of the "tensors"/"constants" arrays into blobs (and, for tensors, into m). */
static smelt_err *list_parse(art_reader *r, const char *list, smelt_model *m, art_consts *consts, art_blob *blobs, int *n_blobs)
{
    json_t *arr;
    char loc[512];
    snprintf(loc, sizeof loc, "%s: manifest.json", r->path);
    SMELT_TRY(art_get_array(loc, r->manifest, list, &arr));
    bool is_tensors = strcmp(list, "tensors") == 0;
    const uint8_t *base = r->map.data + r->data_offset;
    if (!is_tensors && json_array_size(arr)) {
        consts->t = calloc(json_array_size(arr), sizeof *consts->t);
        if (!consts->t) return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", r->path);
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *o = json_array_get(arr, i);
        const char *nm = json_string_value(json_object_get(o, "name"));
        snprintf(loc, sizeof loc, "%s: manifest.json: %s[%zu]%s%s%s", r->path, list, i, nm ? " '" : "", nm ? nm : "", nm ? "'" : "");
        entry_fields e;
        SMELT_TRY(entry_parse(loc, o, r->bin_size, &e));
        smelt_tensor *t;
        if (is_tensors) {
            if (!*e.name) return SMELT_ERR(SMELT_E_CORRUPT, "%s: empty tensor name", loc);
            SMELT_TRY(smelt_err_wrap(smelt_model_add_tensor(m, e.name, e.dtype, e.ndim, e.shape, (void *)(base + e.offset), &t), "%s: manifest.json",
                                     r->path));
        } else {
            t = &consts->t[consts->n++];
            SMELT_TRY(art_strdup(e.name, &t->name));
            t->dtype = e.dtype;
            t->ndim = e.ndim;
            memcpy(t->shape, e.shape, sizeof e.shape);
            t->data = (void *)(base + e.offset);
            t->nbytes = (size_t)e.nbytes;
        }
        SMELT_TRY(quant_parse(loc, o, &t->quant));
        art_blob *b = &blobs[(*n_blobs)++];
        *b = (art_blob){.list = is_tensors ? "tensors" : "constants", .index = (int)i, .name = t->name, .offset = e.offset, .nbytes = e.nbytes};
        memcpy(b->sha256, e.sha256, 65);
    }
    return NULL;
}

/* The artifact itself becomes the new model's source; what it was made from is kept as its parent. */
static smelt_err *meta_parse(art_reader *r, smelt_model *m)
{
    char loc[256];
    snprintf(loc, sizeof loc, "%s: manifest.json", r->path);
    json_t *meta, *prov;
    SMELT_TRY(art_get_object(loc, r->manifest, "meta", &meta));
    SMELT_TRY(art_get_object(loc, r->manifest, "provenance", &prov));
    if (json_object_update(m->meta, meta) != 0) return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", r->path);
    char *manifest_text = json_dumps(r->manifest, JSON_COMPACT | JSON_SORT_KEYS);
    if (!manifest_text) return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", r->path);
    /* The manifest lists every tensor's SHA-256, so its own hash names the artifact's content. */
    char hex[65];
    smelt_sha256_hex(manifest_text, strlen(manifest_text), hex);
    free(manifest_text);
    json_t *src = json_pack("[{s:s, s:I, s:s}]", "path", r->path, "bytes", (json_int_t)r->map.size, "manifest_sha256", hex);
    if (!src || json_object_set_new(m->meta, "sources", src) != 0 || json_object_set_new(m->meta, "parent_provenance", json_deep_copy(prov)) != 0)
        return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", r->path);
    return NULL;
}

smelt_err *art_manifest_parse(art_reader *r, smelt_model **out, art_consts *consts, art_blob **blobs_out, int *n_blobs_out)
{
    *out = NULL;
    *blobs_out = NULL;
    *n_blobs_out = 0;
    memset(consts, 0, sizeof *consts);
    char loc[256];
    snprintf(loc, sizeof loc, "%s: manifest.json", r->path);
    const char *kind, *arch, *target;
    json_t *tensors, *constants;
    SMELT_TRY(art_get_str(loc, r->manifest, "kind", &kind));
    SMELT_TRY(art_get_str(loc, r->manifest, "arch", &arch));
    SMELT_TRY(art_get_str(loc, r->manifest, "target", &target));
    SMELT_TRY(art_get_array(loc, r->manifest, "tensors", &tensors));
    SMELT_TRY(art_get_array(loc, r->manifest, "constants", &constants));
    smelt_model_kind mk;
    if (strcmp(kind, "llm") == 0) mk = SMELT_KIND_LLM;
    else if (strcmp(kind, "graph") == 0) mk = SMELT_KIND_GRAPH;
    else return SMELT_ERR(SMELT_E_CORRUPT, "%s: kind '%s', expected 'llm' or 'graph'", loc, kind);
    /* Every entry takes at least a few dozen bytes of JSON, so these counts are bounded by the
     * manifest's size, itself bounded by ART_MAX_TEXT. */
    size_t n_all = json_array_size(tensors) + json_array_size(constants);
    if (n_all > INT32_MAX / 2) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %zu tensors", loc, n_all);

    smelt_model *m = smelt_model_new(mk, arch);
    art_blob *blobs = calloc(n_all ? n_all : 1, sizeof *blobs);
    int n_blobs = 0;
    smelt_err *err = m && blobs ? NULL : SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", r->path);
    if (!err && mk == SMELT_KIND_LLM) err = config_parse(r->path, r->manifest, &m->llm);
    if (!err) err = list_parse(r, "tensors", m, consts, blobs, &n_blobs);
    if (!err) err = list_parse(r, "constants", m, consts, blobs, &n_blobs);
    for (int i = 0; !err && i < m->n_tensors; i++)
        err = smelt_err_wrap(art_check_quant(m, &m->tensors[i]), "%s: manifest.json: tensors[%d] '%s'", r->path, i, m->tensors[i].name);
    for (int i = 0; !err && i < consts->n; i++)
        err = smelt_err_wrap(art_check_quant(NULL, &consts->t[i]), "%s: manifest.json: constants[%d]", r->path, i);
    if (!err) err = check_overlaps(r->path, blobs, n_blobs);
    if (!err) err = meta_parse(r, m);
    if (err) {
        smelt_model_free(m);
        art_consts_free(consts);
        free(blobs);
        return err;
    }
    *out = m;
    *blobs_out = blobs;
    *n_blobs_out = n_blobs;
    return NULL;
}
