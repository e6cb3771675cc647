/* Pieces shared by the .smelt artifact's writer, reader and JSON codecs (formats/artifact_*.c);
 * nothing outside formats/artifact_*.c should include this header.
 *
 * The split: artifact_write.c lays tensors out and writes the zip; artifact_read.c opens the zip,
 * checks where tensors.bin's bytes lie, reads entries and verifies checksums; artifact_manifest.c
 * turns a model into manifest.json and back; artifact_graph.c does the same for graph.json;
 * artifact_json.c holds the small JSON helpers (typed getters with located errors, a builder with a
 * sticky error, base64) the two codecs share.
 */
#ifndef SMELT_ARTIFACT_INTERNAL_H
#define SMELT_ARTIFACT_INTERNAL_H

#include <zip.h>

#include "formats/artifact.h"

#define ART_TENSORS "tensors.bin"
#define ART_MANIFEST "manifest.json"
#define ART_GRAPH "graph.json"
#define ART_CONFIG "config.json"
#define ART_TOKENIZER "tokenizer.json"

/* Every tensor starts at a multiple of this inside tensors.bin, and tensors.bin's data starts at a
 * multiple of it in the file, so mmapped tensors are aligned for any SIMD load. */
#define ART_ALIGN 64

/* The alignment extra field of tensors.bin's local header: the ID Android's zipalign uses
 * (0xd935), holding the alignment as a little-endian u16 followed by zero padding. */
#define ART_ALIGN_EF_ID 0xd935

/* Largest JSON or text entry read into memory (manifest, graph, config, tokenizer). */
#define ART_MAX_TEXT ((uint64_t)256 << 20)

/* One byte range of tensors.bin: a model tensor or the constant of a TENSOR attribute. */
typedef struct {
    const char *list;  /* "tensors" or "constants": the manifest array it is listed in */
    int index;         /* its index there */
    const char *name;  /* tensor name, "" for an unnamed constant (borrowed) */
    const smelt_tensor *t; /* writer: the tensor whose bytes go here (borrowed) */
    uint64_t offset;   /* from the start of tensors.bin */
    uint64_t nbytes;
    char sha256[65];   /* reader: the manifest's digest */
} art_blob;

/* The constants of TENSOR attributes, parsed from the manifest before graph.json refers to them by
 * index. Tensors here own their name and quant strings; data points into the mapping. */
typedef struct {
    smelt_tensor *t;
    int n;
} art_consts;
void art_consts_free(art_consts *c);

/* An opened artifact: the file mapped, libzip reading from that same mapping, the manifest parsed
 * and tensors.bin's placement checked. */
typedef struct {
    const char *path; /* the name used in messages (borrowed) */
    smelt_map map;
    zip_t *zip;
    json_t *manifest;
    uint64_t bin_size;    /* tensors.bin's size (stored, so also its size in the file) */
    uint64_t data_offset; /* where tensors.bin's bytes start in the file */
} art_reader;

/* Opens file (named `shown` in messages): maps it, opens the zip from the mapping, checks entry 0
 * is tensors.bin stored uncompressed, parses manifest.json's envelope ("format", "format_version",
 * "data_offset") and checks tensors.bin's bytes really are at data_offset. On error r is released. */
smelt_err *art_reader_open(const char *file, const char *shown, art_reader *r);
/* Releases everything r still holds (the mapping too, unless it was handed to a model). */
void art_reader_close(art_reader *r);
/* Reads a whole entry (bounded by ART_MAX_TEXT, its recorded sizes and the file size) into a
 * NUL-terminated malloc'd buffer the caller frees; reading to the end makes libzip check its CRC.
 * A missing entry is an error when required, else *out stays NULL. */
smelt_err *art_read_entry(art_reader *r, const char *name, bool required, char **out, size_t *len);
/* Reads and parses a JSON entry (an object); the caller owns *out. */
smelt_err *art_read_json(art_reader *r, const char *name, json_t **out);

/* manifest.json (artifact_manifest.c) */

/* Builds the manifest for m; blobs[0..m->n_tensors) are m's tensors in order, the rest the
 * constants of TENSOR attributes in node/attribute order. */
smelt_err *art_manifest_build(const char *path, const smelt_model *m, const art_blob *blobs, int n_blobs,
                              uint64_t data_offset, const artifact_write_opts *opts, const char *created, json_t **out);
/* Creates the model described by r->manifest with tensors pointing into the mapping; fills the
 * constants for graph.json and the list of every byte range (sorted by offset) for verify. */
smelt_err *art_manifest_parse(art_reader *r, smelt_model **out, art_consts *consts, art_blob **blobs, int *n_blobs);
/* Checks a tensor's quantization fields; m (may be NULL for attribute constants) resolves the scale
 * and zero-point names. The message has no location prefix: callers add one. */
smelt_err *art_check_quant(const smelt_model *m, const smelt_tensor *t);

/* graph.json (artifact_graph.c) */

/* Builds graph.json: nodes with attributes (TENSOR attributes refer to the manifest's constants in
 * node/attribute order), graph inputs/outputs, opsets. */
smelt_err *art_graph_build(const char *path, const smelt_model *m, json_t **out);
/* Adds graph.json's nodes, inputs, outputs and opsets to m. TENSOR attributes take their tensor
 * out of consts (each constant may be used once). */
smelt_err *art_graph_parse(const char *path, const json_t *g, smelt_model *m, art_consts *consts);

/* JSON helpers (artifact_json.c). `loc` is the message prefix: "out.smelt: manifest.json: tensors[3] 'w'". */

/* Typed field getters: a missing field or one of the wrong type is SMELT_E_CORRUPT naming key. */
smelt_err *art_get(const char *loc, const json_t *o, const char *key, json_t **out);
smelt_err *art_get_str(const char *loc, const json_t *o, const char *key, const char **out);
/* A string or null (*out NULL). */
smelt_err *art_get_str_or_null(const char *loc, const json_t *o, const char *key, const char **out);
smelt_err *art_get_int(const char *loc, const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out);
smelt_err *art_get_u64(const char *loc, const json_t *o, const char *key, uint64_t *out);
smelt_err *art_get_bool(const char *loc, const json_t *o, const char *key, bool *out);
smelt_err *art_get_array(const char *loc, const json_t *o, const char *key, json_t **out);
smelt_err *art_get_object(const char *loc, const json_t *o, const char *key, json_t **out);
/* A dtype name ("f32"); null gives SMELT_DT_INVALID when allow_null. */
smelt_err *art_get_dtype(const char *loc, const json_t *o, const char *key, bool allow_null, smelt_dtype *out);
/* strdup that records SMELT_E_NOMEM; src NULL gives NULL without error. */
smelt_err *art_strdup(const char *src, char **out);

/* A JSON builder whose first failure sticks: later calls do nothing, and the caller checks err once
 * at the end. Strings must be valid UTF-8 (jansson's rule); a name that is not is reported. */
typedef struct {
    const char *path; /* the artifact being written, for messages */
    smelt_err *err;
} art_jb;
/* Sets o[key] = v, taking v; a NULL v (a failed constructor) records out-of-memory. */
void art_jb_set(art_jb *b, json_t *o, const char *key, json_t *v);
/* Appends v to array a, taking v. */
void art_jb_append(art_jb *b, json_t *a, json_t *v);
/* A JSON string for s; `what` names it in the error when s is not valid UTF-8. */
json_t *art_jb_str(art_jb *b, const char *what, const char *s);
json_t *art_jb_int(art_jb *b, int64_t v);

/* Base64 (RFC 4648, with padding) for byte strings JSON cannot hold. encode returns a malloc'd
 * NUL-terminated string or NULL on OOM; decode returns false on malformed input or OOM (*oom
 * tells which) and gives a malloc'd buffer (NUL-terminated for convenience) the caller frees. */
char *art_base64_encode(const void *data, size_t len);
bool art_base64_decode(const char *s, size_t len, char **out, size_t *out_len, bool *oom);

#endif
