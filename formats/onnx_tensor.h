/* Private to the ONNX importer: decoding one onnx.TensorProto into tensor data owned by a model.
 *
 * Shared by formats/onnx.c (initializers, Constant attributes) and onnx_read_tensor_pb. Not part
 * of the public API: callers outside formats/onnx*.c use formats/onnx.h.
 */
#ifndef SMELT_ONNX_TENSOR_H
#define SMELT_ONNX_TENSOR_H

#include "core/ir.h"
#include "onnx.pb-c.h"

/* An external data file already mapped during this import (the mapping itself belongs to the model,
 * so tensors may point into it). */
typedef struct {
    char *location; /* as written in the model, relative to dir */
    const uint8_t *data;
    size_t size;
} onnx_ext_file;

/* What one import needs to decode tensors: where messages point, where external files live, and
 * the model that will own the data. */
typedef struct {
    const char *path; /* the user's file, first in every message */
    char *dir;        /* folder external data locations are relative to (owned) */
    smelt_model *m;
    onnx_ext_file *ext; /* external files mapped so far (owned) */
    int n_ext;
} onnx_ctx;

/* A decoded tensor: data points into m's storage (a copy, or a mapped external file). */
typedef struct {
    smelt_dtype dtype;
    int ndim;
    int64_t shape[SMELT_MAX_DIMS];
    void *data;
    size_t nbytes;
} onnx_tensor_data;

/* Sets up ctx for the file at path (dir = path's folder). Release with onnx_ctx_free. */
smelt_err *onnx_ctx_init(onnx_ctx *ctx, const char *path, smelt_model *m);
/* Frees the context's own memory; the model and its mappings are untouched. */
void onnx_ctx_free(onnx_ctx *ctx);

/* Decodes tp into *out. `what` locates the tensor in messages ("initializer 'fc.weight'"); errors
 * read "<path>: <what>: ...". Every size is checked against the bytes actually present before any
 * allocation. */
smelt_err *onnx_tensor_decode(onnx_ctx *ctx, const Onnx__TensorProto *tp, const char *what, onnx_tensor_data *out);

/* ONNX's name for a TensorProto.DataType value ("float", "int64", "string"), or NULL if unknown. */
const char *onnx_type_name(int onnx_type);

/* A malloc'd formatted string (message locators such as "initializer 'w'"); NULL on OOM. */
char *onnx_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
