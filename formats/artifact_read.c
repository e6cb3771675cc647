/* Reading and verifying a .smelt artifact.
 *
 * The file is mmapped once; libzip reads the zip from that same mapping (zip_source_buffer), and
 * tensors point straight into tensors.bin's bytes in it. Opening checks the zip's structure
 * (libzip's consistency check), that tensors.bin is the first entry and stored uncompressed, and
 * that its bytes really are where the manifest says; every tensor's range is checked against
 * tensors.bin before anything points into it. Hashing every byte is left to artifact_verify, so
 * opening a model costs a few page faults, not a pass over its weights.
 */
#define _POSIX_C_SOURCE 200809L
#include "formats/artifact_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deflate cannot expand data by more than about 1032:1, so no honest entry is larger. */
#define DEFLATE_MAX_RATIO 1032

/* How much of tensors.bin is compared through libzip when opening (all of it in verify). */
#define PLACEMENT_PROBE 4096

static smelt_err *zip_error_of(const char *path, const char *what, zip_error_t *ze)
{
    smelt_err *err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: %s", path, what, zip_error_strerror(ze));
    zip_error_fini(ze);
    return err;
}

/* Compares len bytes of tensors.bin read through libzip (from its start) with the mapping at
 * data_offset. Reading to the end also makes libzip check the entry's CRC. */
static smelt_err *compare_bin(art_reader *r, uint64_t len)
{
    zip_file_t *f = zip_fopen_index(r->zip, 0, 0);
    if (!f) return SMELT_ERR(SMELT_E_CORRUPT, "%s: cannot open %s: %s", r->path, ART_TENSORS, zip_strerror(r->zip));
    uint8_t buf[1 << 16];
    uint64_t pos = 0;
    smelt_err *err = NULL;
    while (!err) {
        uint64_t want = len - pos < sizeof buf ? len - pos : sizeof buf;
        if (want == 0 && len < r->bin_size) break; /* a probe: done without reading to the end */
        zip_int64_t got = zip_fread(f, buf, want ? want : 1);
        if (got < 0) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s is corrupt: %s", r->path, ART_TENSORS, zip_file_strerror(f));
        else if (got == 0) break;
        else if ((uint64_t)got > len - pos || memcmp(buf, r->map.data + r->data_offset + pos, (size_t)got) != 0)
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s's bytes are not at data_offset %llu", r->path, ART_TENSORS, (unsigned long long)r->data_offset);
        else pos += (uint64_t)got;
    }
    if (!err && pos != len)
        err = SMELT_ERR(SMELT_E_TRUNCATED, "%s: %s ends after %llu of its %llu bytes", r->path, ART_TENSORS, (unsigned long long)pos,
                        (unsigned long long)len);
    zip_fclose(f);
    return err;
}

smelt_err *art_reader_open(const char *file, const char *shown, art_reader *r)
{
    memset(r, 0, sizeof *r);
    r->path = shown;
    SMELT_TRY(smelt_map_file(file, &r->map));
    if (r->map.size == 0) {
        /* libzip would take zero bytes for a valid empty archive */
        smelt_unmap(&r->map);
        return SMELT_ERR(SMELT_E_TRUNCATED, "%s: empty file, not a .smelt artifact", shown);
    }
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(r->map.data, r->map.size, 0, &ze);
    smelt_err *err = NULL;
    if (!src) err = zip_error_of(shown, "cannot read", &ze);
    if (!err && !(r->zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze))) {
        zip_source_free(src);
        err = zip_error_of(shown, "not a valid .smelt artifact (zip)", &ze);
    }
    zip_error_fini(&ze);
    zip_stat_t st;
    if (!err && (zip_stat_index(r->zip, 0, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || strcmp(st.name, ART_TENSORS) != 0))
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: the first zip entry is not %s", shown, ART_TENSORS);
    if (!err && (st.comp_method != ZIP_CM_STORE || (st.valid & ZIP_STAT_ENCRYPTION_METHOD && st.encryption_method != ZIP_EM_NONE)))
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s is compressed or encrypted, expected stored as is", shown, ART_TENSORS);
    if (!err) {
        r->bin_size = st.size;
        err = art_read_json(r, ART_MANIFEST, &r->manifest);
    }
    const char *format = NULL;
    int64_t version = 0;
    char loc[256];
    snprintf(loc, sizeof loc, "%s: %s", shown, ART_MANIFEST);
    if (!err) err = art_get_str(loc, r->manifest, "format", &format);
    if (!err && strcmp(format, "smelt") != 0) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: format '%s', expected 'smelt'", loc, format);
    if (!err) err = art_get_int(loc, r->manifest, "format_version", 1, INT32_MAX, &version);
    if (!err && version > SMELT_ARTIFACT_FORMAT_VERSION)
        err = SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: format_version %lld was written by a newer smelt (this one reads version %d)", loc, (long long)version,
                        SMELT_ARTIFACT_FORMAT_VERSION);
    if (!err) err = art_get_u64(loc, r->manifest, "data_offset", &r->data_offset);
    if (!err && (r->data_offset % ART_ALIGN != 0 || r->data_offset > r->map.size || r->bin_size > r->map.size - r->data_offset))
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: data_offset %llu with %llu bytes of %s does not fit a %zu-byte file 64-byte aligned", loc,
                        (unsigned long long)r->data_offset, (unsigned long long)r->bin_size, ART_TENSORS, r->map.size);
    if (!err) err = compare_bin(r, r->bin_size < PLACEMENT_PROBE ? r->bin_size : PLACEMENT_PROBE);
    if (err) art_reader_close(r);
    return err;
}

void art_reader_close(art_reader *r)
{
    if (r->zip) zip_discard(r->zip); /* also frees the source; the mapping is ours */
    json_decref(r->manifest);
    smelt_unmap(&r->map);
    memset(r, 0, sizeof *r);
}

smelt_err *art_read_entry(art_reader *r, const char *name, bool required, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    zip_int64_t idx = zip_name_locate(r->zip, name, 0);
    if (idx < 0) return required ? SMELT_ERR(SMELT_E_CORRUPT, "%s: no %s in the artifact", r->path, name) : NULL;
    zip_stat_t st;
    if (zip_stat_index(r->zip, (zip_uint64_t)idx, 0, &st) != 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: %s", r->path, name, zip_strerror(r->zip));
    uint64_t bound = st.comp_method == ZIP_CM_STORE ? r->map.size : r->map.size * DEFLATE_MAX_RATIO;
    if (st.size > ART_MAX_TEXT || st.size > bound)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s claims %llu bytes, more than the %llu allowed", r->path, name, (unsigned long long)st.size,
                         (unsigned long long)(bound < ART_MAX_TEXT ? bound : ART_MAX_TEXT));
    char *buf = malloc((size_t)st.size + 1);
    if (!buf) return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory reading %s", r->path, name);
    zip_file_t *f = zip_fopen_index(r->zip, (zip_uint64_t)idx, 0);
    smelt_err *err = f ? NULL : SMELT_ERR(SMELT_E_CORRUPT, "%s: cannot open %s: %s", r->path, name, zip_strerror(r->zip));
    uint64_t got = 0;
    while (!err) {
        char extra;
        /* one read past the recorded size: it must find the end, which is when the CRC is checked */
        zip_int64_t n = got < st.size ? zip_fread(f, buf + got, st.size - got) : zip_fread(f, &extra, 1);
        if (n < 0) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s is corrupt: %s", r->path, name, zip_file_strerror(f));
        else if (n == 0) break;
        else if (got >= st.size) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s is longer than its recorded %llu bytes", r->path, name, (unsigned long long)st.size);
        else got += (uint64_t)n;
    }
    if (!err && got != st.size)
        err = SMELT_ERR(SMELT_E_TRUNCATED, "%s: %s ends after %llu of its %llu bytes", r->path, name, (unsigned long long)got, (unsigned long long)st.size);
    if (f) zip_fclose(f);
    if (err) {
        free(buf);
        return err;
    }
    buf[got] = 0;
    *out = buf;
    if (len) *len = (size_t)got;
    return NULL;
}

smelt_err *art_read_json(art_reader *r, const char *name, json_t **out)
{
    char *text;
    size_t len;
    SMELT_TRY(art_read_entry(r, name, true, &text, &len));
    json_error_t jerr;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!*out) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s is not valid JSON: %s (line %d)", r->path, name, jerr.text, jerr.line);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s is not a JSON object", r->path, name);
    }
    return NULL;
}

/* Everything but the hashing: manifest, graph, config and tokenizer, checked and put together. */
static smelt_err *open_model(art_reader *r, smelt_model **out, art_blob **blobs, int *n_blobs)
{
    art_consts consts;
    json_t *graph = NULL;
    smelt_model *m = NULL;
    smelt_err *err = art_manifest_parse(r, &m, &consts, blobs, n_blobs);
    if (err) return err;
    err = art_read_json(r, ART_GRAPH, &graph);
    if (!err) err = art_graph_parse(r->path, graph, m, &consts);
    if (!err) err = art_read_entry(r, ART_CONFIG, m->kind == SMELT_KIND_LLM, &m->hf_config_json, NULL);
    if (!err) err = art_read_entry(r, ART_TOKENIZER, false, &m->tokenizer_json, NULL);
    if (!err) err = smelt_err_wrap(smelt_model_validate(m), "%s", r->path);
    json_decref(graph);
    art_consts_free(&consts);
    if (err) {
        smelt_model_free(m);
        free(*blobs);
        *blobs = NULL;
        return err;
    }
    *out = m;
    return NULL;
}

smelt_err *artifact_read(const char *path, smelt_model **out)
{
    *out = NULL;
    art_reader r;
    SMELT_TRY(art_reader_open(path, path, &r));
    smelt_model *m = NULL;
    art_blob *blobs = NULL;
    int n_blobs = 0;
    smelt_err *err = open_model(&r, &m, &blobs, &n_blobs);
    free(blobs);
    /* the model keeps the mapping its tensors point into */
    if (!err) err = smelt_model_adopt_map(m, &r.map);
    art_reader_close(&r);
    if (err) {
        smelt_model_free(m);
        return err;
    }
    *out = m;
    return NULL;
}

smelt_err *artifact_verify(const char *path, int *n_checked)
{
    *n_checked = 0;
    art_reader r;
    SMELT_TRY(art_reader_open(path, path, &r));
    smelt_model *m = NULL;
    art_blob *blobs = NULL;
    int n_blobs = 0;
    smelt_err *err = open_model(&r, &m, &blobs, &n_blobs);
    for (int i = 0; !err && i < n_blobs; i++) {
        char hex[65];
        smelt_sha256_hex(r.map.data + r.data_offset + blobs[i].offset, (size_t)blobs[i].nbytes, hex);
        if (strcmp(hex, blobs[i].sha256) != 0)
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s[%d] '%s': SHA-256 %.12s... does not match the manifest's %.12s...", path, blobs[i].list,
                            blobs[i].index, blobs[i].name, hex, blobs[i].sha256);
    }
    /* every entry read to its end through libzip, so every CRC is checked too */
    if (!err) err = compare_bin(&r, r.bin_size);
    zip_int64_t n_entries = err ? 0 : zip_get_num_entries(r.zip, 0);
    for (zip_int64_t i = 1; !err && i < n_entries; i++) {
        char *text = NULL;
        const char *name = zip_get_name(r.zip, (zip_uint64_t)i, 0);
        err = name ? art_read_entry(&r, name, true, &text, NULL) : SMELT_ERR(SMELT_E_CORRUPT, "%s: zip entry %lld has no name", path, (long long)i);
        free(text);
    }
    if (!err) *n_checked = m->n_tensors;
    smelt_model_free(m);
    free(blobs);
    art_reader_close(&r);
    return err;
}
