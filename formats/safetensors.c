/* safetensors reader (mmap, strict validation, no copy) and atomic writer. */
#include "formats/safetensors.h"

#include <stdlib.h>
#include <string.h>

/* A parsed header entry, before it becomes a tensor; sorted by offset to check coverage. */
typedef struct {
    const char *name;
    smelt_dtype dtype;
    int ndim;
    int64_t shape[SMELT_MAX_DIMS];
    uint64_t begin, end;
} st_entry;

static int cmp_begin(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static const char *known_dtypes(void)
{
    return "F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL";
}

/* Reads a non-negative JSON integer that fits in uint64 (jansson integers are int64). */
static bool json_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static smelt_err *parse_entry(const char *path, const char *name, json_t *v, uint64_t data_size, st_entry *e)
{
    e->name = name;
    if (!json_is_object(v)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': header entry is not an object", path, name);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"), *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': missing string 'dtype'", path, name);
    e->dtype = smelt_dtype_from_safetensors(json_string_value(dt));
    if (e->dtype == SMELT_DT_INVALID)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%s', expected one of %s", path, name, json_string_value(dt), known_dtypes());
    if (!json_is_array(shape)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': missing array 'shape'", path, name);
    if (json_array_size(shape) > SMELT_MAX_DIMS)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: tensor '%s': %zu dimensions, at most %d supported", path, name, json_array_size(shape), SMELT_MAX_DIMS);
    e->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    for (int i = 0; i < e->ndim; i++) {
        uint64_t d;
        if (!json_u64(json_array_get(shape, (size_t)i), &d) || d > (uint64_t)INT64_MAX)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, i);
        if (d != 0 && numel > UINT64_MAX / d) return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': shape overflows", path, name);
        numel *= d;
        e->shape[i] = (int64_t)d;
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_u64(json_array_get(offs, 0), &e->begin) ||
        !json_u64(json_array_get(offs, 1), &e->end))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': 'data_offsets' must be two non-negative integers", path, name);
    if (e->end < e->begin)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] out of order", path, name, (unsigned long long)e->begin,
                         (unsigned long long)e->end);
    if (e->end > data_size)
        return SMELT_ERR(SMELT_E_TRUNCATED, "%s: tensor '%s': data_offsets [%llu, %llu] run past the data (%llu bytes)", path, name,
                         (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)data_size);
    size_t want = smelt_dtype_nbytes(e->dtype, numel);
    if (want == SIZE_MAX || want != e->end - e->begin) {
        char sb[160];
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': %s %s needs %zu bytes but data_offsets give %llu", path, name,
                         smelt_dtype_traits(e->dtype)->safetensors, smelt_shape_str(e->ndim, e->shape, sb, sizeof sb), want,
                         (unsigned long long)(e->end - e->begin));
    }
    return NULL;
}

/* Checks that the sorted entries tile [0, data_size) exactly: no overlap, no hole. */
static smelt_err *check_coverage(const char *path, st_entry *es, size_t n, uint64_t data_size)
{
    qsort(es, n, sizeof *es, cmp_begin);
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (es[i].begin < pos)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'", path, es[i].name,
                             (unsigned long long)es[i].begin, (unsigned long long)es[i].end, es[i - 1].name);
        if (es[i].begin > pos)
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] leave a hole of %llu bytes before it", path, es[i].name,
                             (unsigned long long)es[i].begin, (unsigned long long)es[i].end, (unsigned long long)(es[i].begin - pos));
        pos = es[i].end;
    }
    if (pos != data_size)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %llu bytes of data after the last tensor are described by no tensor", path,
                         (unsigned long long)(data_size - pos));
    return NULL;
}

smelt_err *safetensors_read(const char *path, smelt_model *m, json_t **meta)
{
    if (meta) *meta = NULL;
    smelt_map map;
    SMELT_TRY(smelt_map_file(path, &map));
    smelt_err *err = NULL;
    json_t *root = NULL;
    st_entry *es = NULL;
    if (map.size < 8) {
        err = SMELT_ERR(SMELT_E_TRUNCATED, "%s: file is %zu bytes, too short for the 8-byte header length", path, map.size);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | map.data[i];
    if (hlen > SAFETENSORS_MAX_HEADER) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: header length %llu is more than the %u-byte maximum", path, (unsigned long long)hlen, SAFETENSORS_MAX_HEADER);
        goto done;
    }
    if (hlen > map.size - 8) {
        err = SMELT_ERR(SMELT_E_TRUNCATED, "%s: header length %llu runs past the end of the file (%zu bytes)", path, (unsigned long long)hlen, map.size);
        goto done;
    }
    json_error_t jerr;
    root = json_loadb((const char *)map.data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: header is not valid JSON: %s (at byte %d)", path, jerr.text, jerr.position + 8);
        goto done;
    }
    if (!json_is_object(root)) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: header is not a JSON object", path);
        goto done;
    }
    const uint8_t *data = map.data + 8 + hlen;
    uint64_t data_size = map.size - 8 - hlen;
    size_t n = json_object_size(root);
    es = calloc(n ? n : 1, sizeof *es);
    if (!es) {
        err = SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                err = SMELT_ERR(SMELT_E_CORRUPT, "%s: '__metadata__' is not an object", path);
                goto done;
            }
            if (meta) *meta = json_incref(val);
            continue;
        }
        if ((err = parse_entry(path, key, val, data_size, &es[k]))) goto done;
        k++;
    }
    if ((err = check_coverage(path, es, k, data_size))) goto done;
    for (size_t i = 0; i < k; i++) {
        void *p = (void *)(data + es[i].begin);
        size_t nb = (size_t)(es[i].end - es[i].begin);
        size_t align = (size_t)(smelt_dtype_traits(es[i].dtype)->bits / 8);
        if (align > 1 && (uintptr_t)p % align != 0) {
            /* Misaligned for its element type: copy so kernels may load elements directly. */
            void *copy = smelt_model_alloc(m, nb);
            if (!copy) {
                err = SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", path);
                goto done;
            }
            memcpy(copy, p, nb);
            p = copy;
        }
        if ((err = smelt_model_add_tensor(m, es[i].name, es[i].dtype, es[i].ndim, es[i].shape, p, NULL))) {
            err = smelt_err_wrap(err, "%s", path);
            goto done;
        }
    }
    err = smelt_model_adopt_map(m, &map);
done:
    free(es);
    json_decref(root);
    if (err) {
        smelt_unmap(&map);
        if (meta && *meta) {
            json_decref(*meta);
            *meta = NULL;
        }
    }
    return err;
}

/* Shard file names must stay inside the checkpoint folder. */
static bool safe_relative(const char *name)
{
    if (!name[0] || name[0] == '/') return false;
    if (strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 || strstr(name, "/../") || 
        (strlen(name) >= 3 && strcmp(name + strlen(name) - 3, "/..") == 0))
        return false;
    return true;
}

smelt_err *safetensors_read_sharded(const char *index_path, smelt_model *m)
{
    char *text = NULL;
    size_t len = 0;
    SMELT_TRY(smelt_read_file(index_path, 64u * 1024 * 1024, &text, &len));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) return SMELT_ERR(SMELT_E_CORRUPT, "%s: not valid JSON: %s (line %d, column %d)", index_path, jerr.text, jerr.line, jerr.column);
    smelt_err *err = NULL;
    char *dir = strdup(index_path);
    smelt_strmap shard_of = {0}; /* tensor name -> shard number (into names) */
    const char **names = NULL;
    json_t *wm = json_object_get(root, "weight_map");
    if (!dir) {
        err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        goto done;
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: missing non-empty object 'weight_map'", index_path);
        goto done;
    }
    names = calloc(json_object_size(wm), sizeof *names);
    if (!names) {
        err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        goto done;
    }
    int n_shards = 0;
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val)
    {
        if (!json_is_string(val)) {
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s: weight_map '%s': shard file name is not a string", index_path, key);
            goto done;
        }
        const char *file = json_string_value(val);
        if (!safe_relative(file)) {
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s: weight_map '%s': shard '%s' is not a path inside the model folder", index_path, key, file);
            goto done;
        }
        int s = 0;
        while (s < n_shards && strcmp(names[s], file) != 0) s++;
        if (s == n_shards) names[n_shards++] = file;
        if (!smelt_strmap_put(&shard_of, key, strlen(key), s)) {
            err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            goto done;
        }
    }
    for (int s = 0; s < n_shards; s++) {
        char *p = smelt_path_join(dir, names[s]);
        if (!p) {
            err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            goto done;
        }
        int before = m->n_tensors;
        err = safetensors_read(p, m, NULL);
        if (!err) {
            for (int t = before; t < m->n_tensors && !err; t++) {
                int64_t want;
                const char *tn = m->tensors[t].name;
                if (!smelt_strmap_get(&shard_of, tn, strlen(tn), &want))
                    err = SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s' is not listed in %s", p, tn, smelt_path_base(index_path));
                else if (want != s)
                    err = SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s' is listed under shard '%s' in %s", p, tn, names[want], smelt_path_base(index_path));
            }
        }
        free(p);
        if (err) goto done;
    }
    json_object_foreach(wm, key, val)
    {
        if (!smelt_model_find(m, key)) {
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s: tensor '%s' is missing from shard '%s'", index_path, key, json_string_value(val));
            goto done;
        }
    }
done:
    free(names);
    free(dir);
    smelt_strmap_free(&shard_of);
    json_decref(root);
    return err;
}

smelt_err *safetensors_write(const char *path, const safetensors_entry *entries, int n, json_t *meta)
{
    json_t *hdr = json_object();
    if (!hdr) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_err *err = NULL;
    char *text = NULL;
    if (meta) json_object_set(hdr, "__metadata__", meta);
    uint64_t off = 0;
    for (int i = 0; i < n && !err; i++) {
        const safetensors_entry *e = &entries[i];
        const char *dt = smelt_dtype_traits(e->dtype)->safetensors;
        if (!dt) {
            err = SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: tensor '%s': dtype %s has no safetensors equivalent", path, e->name, smelt_dtype_name(e->dtype));
            break;
        }
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *ent = json_pack("{s:s, s:o, s:[I,I]}", "dtype", dt, "shape", shape, "data_offsets", (json_int_t)off, (json_int_t)(off + e->nbytes));
        if (!ent || json_object_set_new(hdr, e->name, ent) != 0) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        off += e->nbytes;
    }
    if (!err && !(text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_atomic a = {0};
    if (!err) err = smelt_atomic_open(path, &a);
    if (!err) {
        /* Pad the header with spaces to a multiple of 8 so the data block starts aligned. */
        size_t hl = strlen(text), padded = (hl + 7) / 8 * 8;
        uint8_t lenb[8];
        for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)padded >> (8 * i));
        bool ok = fwrite(lenb, 1, 8, a.fp) == 8 && fwrite(text, 1, hl, a.fp) == hl;
        for (size_t i = hl; i < padded && ok; i++) ok = fputc(' ', a.fp) != EOF;
        for (int i = 0; i < n && ok; i++) ok = entries[i].nbytes == 0 || fwrite(entries[i].data, 1, entries[i].nbytes, a.fp) == entries[i].nbytes;
        if (!ok) {
            err = SMELT_ERR(SMELT_E_IO, "%s: write failed", path);
            smelt_atomic_abort(&a);
        } else {
            err = smelt_atomic_commit(&a);
        }
    }
    free(text);
    json_decref(hdr);
    return err;
}
