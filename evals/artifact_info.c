/* Artifact descriptions for results (see artifact_info.h). */
#include "evals/artifact_info.h"

#include "core/io.h"
#include "formats/load.h"

static smelt_err *hash_file(const char *path, char hex[65])
{
    smelt_map map;
    SMELT_TRY(smelt_map_file(path, &map));
    smelt_sha256_hex(map.data, map.size, hex);
    smelt_unmap(&map);
    return NULL;
}

smelt_err *artifact_describe(const char *path, const smelt_model *m, const llm_engine *e, json_t **out)
{
    *out = NULL;
    smelt_source_kind sk;
    SMELT_TRY(smelt_source_kind_of(path, &sk));
    static const char *const kinds[] = {"", "hf_folder", "safetensors", "onnx", "smelt_artifact"};
    const smelt_llm_config *c = llm_engine_config(e);
    json_t *sources = json_array();
    json_t *src_in = json_object_get(m->meta, "sources");
    size_t i;
    json_t *s;
    json_array_foreach(src_in, i, s)
    {
        const char *p = json_string_value(json_object_get(s, "path"));
        if (!p) continue;
        char hex[65];
        smelt_err *err = hash_file(p, hex);
        if (err) {
            json_decref(sources);
            return err;
        }
        json_array_append_new(sources, json_pack("{s:s, s:O, s:s}", "path", p, "bytes", json_object_get(s, "bytes"), "sha256", hex));
    }
    json_t *art = json_object_get(m->meta, "parent_provenance");
    json_t *prov = json_pack("{s:o, s:O}", "sources", sources, "artifact", art ? art : json_null());
    json_t *cfg = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "vocab_size", c->vocab_size, "hidden", c->hidden, "layers", c->n_layers, "heads",
                            c->n_heads, "kv_heads", c->n_kv_heads, "ffn", c->ffn, "context", c->max_pos);
    *out = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:o}", "path", path, "source_kind", kinds[sk], "arch", m->arch ? m->arch : "", "config", cfg,
                     "weight_bytes", (json_int_t)llm_engine_weight_bytes(e), "kv_bytes_per_token", (json_int_t)llm_kv_bytes_per_token(e), "provenance", prov);
    return *out ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}
