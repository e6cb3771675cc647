/* Opening any model smelt understands, chosen by what the path is:
 *   a folder with config.json              Hugging Face checkpoint (+ tokenizer.json when present)
 *   *.safetensors                          bare tensors (a model of kind GRAPH with no nodes)
 *   *.onnx                                 ONNX graph
 *   *.smelt                                smelt artifact
 */
#ifndef SMELT_LOAD_H
#define SMELT_LOAD_H

#include "core/ir.h"

typedef enum { SMELT_SRC_HF_DIR = 1, SMELT_SRC_SAFETENSORS, SMELT_SRC_ONNX, SMELT_SRC_ARTIFACT } smelt_source_kind;

/* Decides the source kind from the path; error if it is none of the above. */
smelt_err *smelt_source_kind_of(const char *path, smelt_source_kind *out);

/* Loads path into a new model (caller frees with smelt_model_free). Records provenance in
 * m->meta["sources"]: each file read, with its size and SHA-256 when hash_sources is true. */
smelt_err *smelt_load_model(const char *path, bool hash_sources, smelt_model **out);

#endif
