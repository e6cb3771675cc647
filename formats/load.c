/* Opening any model smelt understands, dispatched on what the path is. */
#include "formats/load.h"

#include <stdlib.h>
#include <string.h>

#include "formats/artifact.h"
#include "formats/hf_model.h"
#include "formats/onnx.h"
#include "formats/provenance.h"
#include "formats/safetensors.h"

static bool ends_with(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && strcmp(s + a - b, sfx) == 0;
}

smelt_err *smelt_source_kind_of(const char *path, smelt_source_kind *out)
{
    if (smelt_is_dir(path)) {
        char *cfg = smelt_path_join(path, "config.json");
        bool ok = cfg && smelt_file_exists(cfg);
        free(cfg);
        if (!ok) return SMELT_ERR(SMELT_E_INVALID, "%s: folder has no config.json (expected a Hugging Face model folder)", path);
        *out = SMELT_SRC_HF_DIR;
        return NULL;
    }
    if (!smelt_file_exists(path)) return SMELT_ERR(SMELT_E_IO, "%s: no such file or folder", path);
    if (ends_with(path, ".safetensors")) *out = SMELT_SRC_SAFETENSORS;
    else if (ends_with(path, ".onnx")) *out = SMELT_SRC_ONNX;
    else if (ends_with(path, ".smelt")) *out = SMELT_SRC_ARTIFACT;
    else return SMELT_ERR(SMELT_E_INVALID, "%s: unknown kind of model (expected a Hugging Face folder, .safetensors, .onnx or .smelt)", path);
    return NULL;
}

smelt_err *smelt_load_model(const char *path, bool hash_sources, smelt_model **out)
{
    *out = NULL;
    smelt_source_kind kind;
    SMELT_TRY(smelt_source_kind_of(path, &kind));
    smelt_err *err = NULL;
    switch (kind) {
    case SMELT_SRC_HF_DIR:
        return hf_import(path, hash_sources, out);
    case SMELT_SRC_ONNX:
        err = onnx_read(path, out);
        if (!err) err = provenance_add_file(*out, path, hash_sources);
        break;
    case SMELT_SRC_ARTIFACT:
        return artifact_read(path, out);
    case SMELT_SRC_SAFETENSORS: {
        smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "safetensors");
        if (!m) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        err = safetensors_read(path, m, NULL);
        if (!err) err = provenance_add_file(m, path, hash_sources);
        *out = m;
        break;
    }
    }
    if (err) {
        smelt_model_free(*out);
        *out = NULL;
    }
    return err;
}
