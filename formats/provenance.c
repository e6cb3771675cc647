/* Recording source files (size, SHA-256) in a model's metadata. */
#define _POSIX_C_SOURCE 200809L
#include "formats/provenance.h"

#include <stdlib.h>
#include <string.h>

smelt_err *provenance_add_file(smelt_model *m, const char *path, bool hash)
{
    json_t *sources = json_object_get(m->meta, "sources");
    if (!sources) {
        sources = json_array();
        if (!sources || json_object_set_new(m->meta, "sources", sources) != 0) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    smelt_map map;
    SMELT_TRY(smelt_map_file(path, &map));
    json_t *rec = json_pack("{s:s, s:I}", "path", path, "bytes", (json_int_t)map.size);
    if (rec && hash) {
        char hex[65];
        smelt_sha256_hex(map.data, map.size, hex);
        json_object_set_new(rec, "sha256", json_string(hex));
    }
    smelt_unmap(&map);
    if (!rec || json_array_append_new(sources, rec) != 0) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    return NULL;
}

smelt_err *provenance_add_shards(smelt_model *m, const char *index_path, bool hash)
{
    char *text = NULL;
    size_t len;
    SMELT_TRY(smelt_read_file(index_path, 64u << 20, &text, &len));
    json_t *root = json_loadb(text, len, 0, NULL);
    free(text);
    json_t *wm = json_object_get(root, "weight_map");
    smelt_err *err = NULL;
    char *dir = strdup(index_path);
    if (!dir) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) *slash = 0;
    else if (dir) strcpy(dir, ".");
    json_t *seen = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val)
    {
        if (err) break;
        const char *file = json_string_value(val);
        if (!file || json_object_get(seen, file)) continue;
        json_object_set_new(seen, file, json_true());
        char *p = smelt_path_join(dir, file);
        err = p ? provenance_add_file(m, p, hash) : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        free(p);
    }
    json_decref(seen);
    json_decref(root);
    free(dir);
    return err;
}
