/* What a result says about the model it measured: the path, what kind of source it is, the
 * decoder's shape, and provenance — every source file with its size and SHA-256, plus for .smelt
 * artifacts the provenance recorded in the manifest (the command that made it, its parents). */
#ifndef SMELT_EVAL_ARTIFACT_INFO_H
#define SMELT_EVAL_ARTIFACT_INFO_H

#include <jansson.h>

#include "core/ir.h"
#include "runtime/llm.h"

/* {"path", "source_kind", "arch", "config": {...}, "weight_bytes", "kv_bytes_per_token",
 *  "provenance": {"sources": [{"path", "bytes", "sha256"}], "artifact": manifest provenance|null}}.
 * Hashes each source file (the model's own files: a few MB to a few GB, read once). */
smelt_err *artifact_describe(const char *path, const smelt_model *m, const llm_engine *e, json_t **out);

/* The same for an ONNX graph (classifier suites): "config" is null and "graph" is
 * {"inputs": [{"name", "shape"}], "outputs": [...], "nodes"}; "weight_bytes" counts every tensor's
 * bytes and "kv_bytes_per_token" is null. */
smelt_err *artifact_describe_graph(const char *path, const smelt_model *m, json_t **out);

#endif
