/* safetensors: read (mmap, zero copy, strict validation) and write (atomic).
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON {"name": {"dtype", "shape",
 * "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data block. Reading checks
 * that the header fits the file and a sane maximum, the JSON is valid, every dtype is known, every
 * shape x dtype size equals its byte range, ranges lie in the data block without overlap or holes,
 * and names are unique.
 */
#ifndef SMELT_SAFETENSORS_H
#define SMELT_SAFETENSORS_H

#include "core/ir.h"

/* Largest header accepted (the format's own reference implementation uses 100 MB). */
#define SAFETENSORS_MAX_HEADER (100u * 1024 * 1024)

/* Maps path and adds its tensors to m (data points into the mapping, which m then owns). If meta
 * is not NULL it receives the "__metadata__" object (new reference, or NULL when absent). Errors
 * name the file and the tensor. */
smelt_err *safetensors_read(const char *path, smelt_model *m, json_t **meta);

/* Loads a sharded checkpoint: index_path is model.safetensors.index.json; every shard it names is
 * read, and every tensor in weight_map must come from the shard the index says. */
smelt_err *safetensors_read_sharded(const char *index_path, smelt_model *m);

/* A tensor to write: name, dtype, shape and bytes. */
typedef struct {
    const char *name;
    smelt_dtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data;
    size_t nbytes;
} safetensors_entry;

/* Writes entries (in the given order) to path atomically. meta (may be NULL) becomes
 * "__metadata__"; its values must be strings. */
smelt_err *safetensors_write(const char *path, const safetensors_entry *entries, int n, json_t *meta);

#endif
