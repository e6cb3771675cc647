/* Writing a .smelt artifact: lay every tensor out 64-byte aligned in tensors.bin, hash it, build
 * manifest.json and graph.json, and let libzip write the zip with tensors.bin first and stored.
 *
 * tensors.bin is streamed to libzip from the tensors' own memory by a source callback (padding
 * between tensors is zeros), so writing a model never holds a second copy of its weights. The
 * entry's local header carries an alignment extra field sized so that its data starts at
 * ART_ALIGN in the file; after libzip has written the file we read that header's two length
 * fields back to confirm, rather than trusting the arithmetic.
 */
#define _POSIX_C_SOURCE 200809L
#include "formats/artifact_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Fixed part of a zip local file header; the name and extra field follow it. */
#define ZIP_LOCAL_HEADER 30

/* Streams tensors.bin to libzip: the blobs in offset order with zeros between them. */
typedef struct {
    const art_blob *blobs;
    int n_blobs;
    uint64_t size;
    uint64_t pos;
    int cursor; /* first blob that ends after pos */
    time_t mtime;
    zip_error_t error;
} bin_stream;

static zip_int64_t bin_read(bin_stream *s, uint8_t *dst, uint64_t want)
{
    uint64_t left = s->size - s->pos;
    if (want > left) want = left;
    uint64_t done = 0;
    while (done < want) {
        while (s->cursor < s->n_blobs && s->blobs[s->cursor].offset + s->blobs[s->cursor].nbytes <= s->pos) s->cursor++;
        uint64_t chunk;
        if (s->cursor < s->n_blobs && s->blobs[s->cursor].offset <= s->pos) {
            const art_blob *b = &s->blobs[s->cursor];
            uint64_t in = s->pos - b->offset;
            chunk = b->nbytes - in;
            if (chunk > want - done) chunk = want - done;
            memcpy(dst + done, (const uint8_t *)b->t->data + in, chunk);
        } else {
            uint64_t next = s->cursor < s->n_blobs ? s->blobs[s->cursor].offset : s->size;
            chunk = next - s->pos;
            if (chunk > want - done) chunk = want - done;
            memset(dst + done, 0, chunk);
        }
        done += chunk;
        s->pos += chunk;
    }
    return (zip_int64_t)done;
}

static zip_int64_t bin_callback(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
    bin_stream *s = ud;
    switch (cmd) {
    case ZIP_SOURCE_OPEN:
        s->pos = 0;
        s->cursor = 0;
        return 0;
    case ZIP_SOURCE_READ:
        return bin_read(s, data, len);
    case ZIP_SOURCE_CLOSE:
    case ZIP_SOURCE_FREE:
        return 0;
    case ZIP_SOURCE_STAT: {
        zip_stat_t *st = data;
        zip_stat_init(st);
        st->size = s->size;
        st->mtime = s->mtime;
        st->valid |= ZIP_STAT_SIZE | ZIP_STAT_MTIME;
        return sizeof *st;
    }
    case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&s->error, data, len);
    case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR,
                                              ZIP_SOURCE_FREE, -1);
    default:
        zip_error_set(&s->error, ZIP_ER_INVAL, 0);
        return -1;
    }
}

/* Every byte range tensors.bin holds: the model's tensors, then TENSOR attribute constants in
 * node/attribute order (graph.json refers to constants by that index). */
static smelt_err *collect_blobs(const char *path, const smelt_model *m, art_blob **out, int *n_out, uint64_t *bin_size)
{
    int n = m->n_tensors;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_attrs; k++) n += m->nodes[i].attrs[k].type == SMELT_ATTR_TENSOR;
    art_blob *b = calloc(n ? (size_t)n : 1, sizeof *b);
    if (!b) return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", path);
    int k = 0, n_const = 0;
    for (int i = 0; i < m->n_tensors; i++) b[k++] = (art_blob){.list = "tensors", .index = i, .name = m->tensors[i].name, .t = &m->tensors[i]};
    for (int i = 0; i < m->n_nodes; i++)
        for (int a = 0; a < m->nodes[i].n_attrs; a++) {
            const smelt_attr *at = &m->nodes[i].attrs[a];
            if (at->type != SMELT_ATTR_TENSOR) continue;
            b[k++] = (art_blob){.list = "constants", .index = n_const++, .name = at->tensor->name ? at->tensor->name : "", .t = at->tensor};
        }
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        const smelt_tensor *t = b[i].t;
        if (!t->data && t->nbytes) {
            smelt_err *err = SMELT_ERR(SMELT_E_INVALID, "%s: tensor '%s' has no data", path, b[i].name);
            free(b);
            return err;
        }
        pos = (pos + ART_ALIGN - 1) / ART_ALIGN * ART_ALIGN;
        b[i].offset = pos;
        b[i].nbytes = t->nbytes;
        smelt_sha256_hex(t->data, t->nbytes, b[i].sha256);
        pos += t->nbytes;
    }
    *out = b;
    *n_out = n;
    *bin_size = pos;
    return NULL;
}

/* "2026-11-25T10:05:05Z" */
static void utc_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static smelt_err *zip_fail(const char *path, const char *what, zip_t *za)
{
    return SMELT_ERR(SMELT_E_IO, "%s: %s: %s", path, what, za ? zip_strerror(za) : "libzip error");
}

/* Adds a text entry from a malloc'd buffer that libzip takes (it frees it after zip_close). */
static smelt_err *add_text(const char *path, zip_t *za, const char *name, char *text)
{
    if (!text) return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", path);
    zip_source_t *src = zip_source_buffer(za, text, strlen(text), 1);
    if (!src) {
        free(text);
        return zip_fail(path, name, za);
    }
    if (zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8) < 0) {
        zip_source_free(src);
        return zip_fail(path, name, za);
    }
    return NULL;
}

static char *strdup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Where tensors.bin's data ended up: read back from its local header (at offset 0, since it is the
 * first entry). */
static smelt_err *check_data_offset(const char *shown, const char *file, uint64_t want)
{
    FILE *f = fopen(file, "rb");
    uint8_t h[ZIP_LOCAL_HEADER];
    bool ok = f && fread(h, 1, sizeof h, f) == sizeof h;
    if (f) fclose(f);
    if (!ok) return SMELT_ERR(SMELT_E_IO, "%s: cannot read back the written zip", shown);
    uint64_t got = ZIP_LOCAL_HEADER + (uint64_t)(h[26] | h[27] << 8) + (uint64_t)(h[28] | h[29] << 8);
    if (h[0] != 'P' || h[1] != 'K' || h[2] != 3 || h[3] != 4 || got != want)
        return SMELT_ERR(SMELT_E_GENERIC, "%s: libzip placed tensors.bin's data at byte %llu, not %llu as planned", shown,
                         (unsigned long long)got, (unsigned long long)want);
    return NULL;
}

/* Writes the zip to tmp. */
static smelt_err *write_zip(const char *path, const char *tmp, const smelt_model *m, bin_stream *bs, char *manifest, char *graph)
{
    int zerr = 0;
    zip_t *za = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!za) {
        free(manifest);
        free(graph);
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        smelt_err *err = SMELT_ERR(SMELT_E_IO, "%s: cannot create zip: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return err;
    }
    smelt_err *err = NULL;
    zip_source_t *src = zip_source_function(za, bin_callback, bs);
    zip_int64_t idx = src ? zip_file_add(za, ART_TENSORS, src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
        zip_source_free(src);
        err = zip_fail(path, ART_TENSORS, za);
    }
    /* 30 + 11 bytes of fixed header and name, 4 of extra-field header, 2 of alignment value: pad
     * the rest so the data starts at ART_ALIGN. */
    uint8_t ef[ART_ALIGN] = {ART_ALIGN & 0xff, ART_ALIGN >> 8};
    size_t ef_len = ART_ALIGN - ZIP_LOCAL_HEADER - strlen(ART_TENSORS) - 4;
    if (!err && (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) < 0 ||
                 zip_file_extra_field_set(za, (zip_uint64_t)idx, ART_ALIGN_EF_ID, ZIP_EXTRA_FIELD_NEW, ef, (zip_uint16_t)ef_len, ZIP_FL_LOCAL) < 0))
        err = zip_fail(path, ART_TENSORS, za);
    if (!err) err = add_text(path, za, ART_MANIFEST, manifest);
    else free(manifest);
    if (!err) err = add_text(path, za, ART_GRAPH, graph);
    else free(graph);
    if (!err && m->hf_config_json) err = add_text(path, za, ART_CONFIG, strdup_or_null(m->hf_config_json));
    if (!err && m->tokenizer_json) err = add_text(path, za, ART_TOKENIZER, strdup_or_null(m->tokenizer_json));
    if (err) {
        zip_discard(za);
        return err;
    }
    if (zip_close(za) != 0) {
        err = zip_fail(path, "writing the zip", za);
        zip_discard(za);
    }
    return err;
}

smelt_err *artifact_write(const char *path, const smelt_model *m, const artifact_write_opts *opts)
{
    art_blob *blobs = NULL;
    int n_blobs = 0;
    bin_stream bs = {0};
    SMELT_TRY(smelt_err_wrap(smelt_model_validate(m), "%s", path));
    SMELT_TRY(collect_blobs(path, m, &blobs, &n_blobs, &bs.size));
    bs.blobs = blobs;
    bs.n_blobs = n_blobs;
    bs.mtime = time(NULL);
    zip_error_init(&bs.error);

    char created[32];
    utc_now(created);
    json_t *manifest = NULL, *graph = NULL;
    smelt_err *err = art_manifest_build(path, m, blobs, n_blobs, ART_ALIGN, opts, created, &manifest);
    if (!err) err = art_graph_build(path, m, &graph);
    char *manifest_text = NULL, *graph_text = NULL;
    if (!err) {
        manifest_text = json_dumps(manifest, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        graph_text = json_dumps(graph, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!manifest_text || !graph_text) err = SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", path);
    }
    json_decref(manifest);
    json_decref(graph);

    /* The zip goes to a temporary name beside the target and is renamed over it only when it is
     * complete and checked. */
    smelt_atomic out = {0};
    if (!err) err = smelt_atomic_open(path, &out);
    if (!err) {
        err = write_zip(path, out.tmp_path, m, &bs, manifest_text, graph_text);
        manifest_text = graph_text = NULL; /* taken by write_zip */
    }
    if (!err) err = check_data_offset(path, out.tmp_path, ART_ALIGN);
    if (!err) err = smelt_atomic_commit(&out);
    else smelt_atomic_abort(&out);
    free(manifest_text);
    free(graph_text);
    zip_error_fini(&bs.error);
    free(blobs);
    return err;
}
