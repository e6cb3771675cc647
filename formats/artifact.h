/* The .smelt artifact: a zip (libzip) holding
 *   tensors.bin    every tensor's bytes, stored uncompressed, each at a 64-byte-aligned offset, the
 *                  entry itself placed first so its data starts 64-byte aligned in the file: the
 *                  runtime mmaps the zip and points tensors straight into it;
 *   manifest.json  format version, model kind, architecture, target, LLM config, per-tensor dtype,
 *                  shape, offset, size, SHA-256 and quantization, provenance (source files with
 *                  SHA-256, smelt version, the command, time);
 *   graph.json     nodes (op, domain, inputs, outputs, attributes), graph inputs/outputs, opsets;
 *   config.json, tokenizer.json  the original Hugging Face files, when the model has them.
 * Written atomically (temp file + rename).
 */
#ifndef SMELT_ARTIFACT_H
#define SMELT_ARTIFACT_H

#include "core/ir.h"

#define SMELT_ARTIFACT_FORMAT_VERSION 1

typedef struct {
    const char *target;       /* "any" (portable), "cpu", ... */
    const char *command;      /* the command line that made it */
    const char *smelt_version;
} artifact_write_opts;

/* Writes m to path. Provenance comes from m->meta (its "sources" array) plus opts. */
smelt_err *artifact_write(const char *path, const smelt_model *m, const artifact_write_opts *opts);

/* Opens path: parses manifest and graph, maps the file and points tensors into tensors.bin (no
 * copy). Validates every offset and size against the entry. Does not hash the data (see verify). */
smelt_err *artifact_read(const char *path, smelt_model **out);

/* Recomputes every tensor's SHA-256 (and libzip's CRCs) and compares with the manifest. On success
 * *n_checked is the number of tensors checked. */
smelt_err *artifact_verify(const char *path, int *n_checked);

#endif
