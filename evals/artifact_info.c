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

static const char *const kinds[] = {"", "hf_folder", "safetensors", "onnx", "smelt_artifact"};

/* {"sources": [...], "artifact": ...} of m, each source file hashed now. */
static smelt_err *provenance(const smelt_model *m, json_t **out)
{
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
    *out = json_pack("{s:o, s:O}", "sources", sources, "artifact", art ? art : json_null());
    return *out ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}

smelt_err *artifact_describe(const char *path, const smelt_model *m, const llm_engine *e, json_t **out)
{
    *out = NULL;
    smelt_source_kind sk;
    SMELT_TRY(smelt_source_kind_of(path, &sk));
    const smelt_llm_config *c = llm_engine_config(e);
    json_t *prov;
    SMELT_TRY(provenance(m, &prov));
    json_t *cfg = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "vocab_size", c->vocab_size, "hidden", c->hidden, "layers", c->n_layers, "heads",
                            c->n_heads, "kv_heads", c->n_kv_heads, "ffn", c->ffn, "context", c->max_pos);
    *out = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:o}", "path", path, "source_kind", kinds[sk], "arch", m->arch ? m->arch : "", "config", cfg,
                     "weight_bytes", (json_int_t)llm_engine_weight_bytes(e), "kv_bytes_per_token", (json_int_t)llm_kv_bytes_per_token(e), "provenance", prov);
    return *out ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}

static json_t *values(const smelt_value *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < v[i].ndim; d++)
            json_array_append_new(shape, v[i].dims[d] >= 0 ? json_integer(v[i].dims[d]) : json_string(v[i].dim_names[d] ? v[i].dim_names[d] : "?"));
        json_array_append_new(a, json_pack("{s:s, s:o}", "name", v[i].name, "shape", shape));
    }
    return a;
}

smelt_err *artifact_describe_graph(const char *path, const smelt_model *m, json_t **out)
{
    *out = NULL;
    smelt_source_kind sk;
    SMELT_TRY(smelt_source_kind_of(path, &sk));
    json_t *prov;
    SMELT_TRY(provenance(m, &prov));
    size_t bytes = 0;
    for (int i = 0; i < m->n_tensors; i++) bytes += m->tensors[i].nbytes;
    json_t *graph = json_pack("{s:o, s:o, s:i}", "inputs", values(m->inputs, m->n_inputs), "outputs", values(m->outputs, m->n_outputs), "nodes", m->n_nodes);
    *out = json_pack("{s:s, s:s, s:s, s:n, s:o, s:I, s:n, s:o}", "path", path, "source_kind", kinds[sk], "arch", m->arch ? m->arch : "", "config", "graph", graph,
                     "weight_bytes", (json_int_t)bytes, "kv_bytes_per_token", "provenance", prov);
    return *out ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}
