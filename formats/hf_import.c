/* Importing a Hugging Face checkpoint folder: config.json, the weights (one file or a sharded
 * index), tokenizer.json, provenance of every file read. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "formats/provenance.h"
#include "formats/safetensors.h"

#define MAX_CONFIG_BYTES (4u << 20)
#define MAX_TOKENIZER_BYTES (256u << 20)

bool hf_gpt2_is_conv1d(const char *name)
{
    size_t n = strlen(name);
    static const char *const sfx[] = {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        size_t k = strlen(sfx[i]);
        if (n >= k && strcmp(name + n - k, sfx[i]) == 0) return true;
    }
    return false;
}

/* Transposes a 2-D tensor [r, c] -> [c, r] into new model storage (element size es bytes). */
static smelt_err *transpose2d(smelt_model *m, smelt_tensor *t)
{
    if (t->ndim != 2) return SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s': Conv1D weight must have 2 dimensions, has %d", t->name, t->ndim);
    size_t es = (size_t)smelt_dtype_traits(t->dtype)->bits / 8;
    int64_t r = t->shape[0], c = t->shape[1];
    uint8_t *dst = smelt_model_alloc(m, t->nbytes);
    if (!dst) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    const uint8_t *src = t->data;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) memcpy(dst + ((size_t)j * (size_t)r + (size_t)i) * es, src + ((size_t)i * (size_t)c + (size_t)j) * es, es);
    t->data = dst;
    t->shape[0] = c;
    t->shape[1] = r;
    return NULL;
}

static smelt_err *read_weights(const char *dir, smelt_model *m, bool hash)
{
    char *index = smelt_path_join(dir, "model.safetensors.index.json");
    char *single = smelt_path_join(dir, "model.safetensors");
    smelt_err *err = NULL;
    if (!index || !single) {
        err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    } else if (smelt_file_exists(index)) {
        err = safetensors_read_sharded(index, m);
        if (!err) err = provenance_add_file(m, index, hash);
        if (!err) err = provenance_add_shards(m, index, hash);
    } else if (smelt_file_exists(single)) {
        err = safetensors_read(single, m, NULL);
        if (!err) err = provenance_add_file(m, single, hash);
    } else {
        err = SMELT_ERR(SMELT_E_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(index);
    free(single);
    return err;
}

smelt_err *hf_import(const char *dir, bool hash_sources, smelt_model **out)
{
    *out = NULL;
    char *cfg_path = smelt_path_join(dir, "config.json");
    char *tok_path = smelt_path_join(dir, "tokenizer.json");
    char *text = NULL, *arch = NULL;
    size_t len = 0;
    smelt_llm_config cfg;
    smelt_model *m = NULL;
    smelt_err *err = NULL;
    if (!cfg_path || !tok_path) {
        err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        goto done;
    }
    if ((err = smelt_read_file(cfg_path, MAX_CONFIG_BYTES, &text, &len))) goto done;
    if ((err = hf_config_parse(cfg_path, text, len, &arch, &cfg))) goto done;
    if (!(m = smelt_model_new(SMELT_KIND_LLM, arch))) {
        err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        goto done;
    }
    m->llm = cfg;
    m->hf_config_json = text;
    text = NULL;
    if ((err = provenance_add_file(m, cfg_path, hash_sources))) goto done;
    if ((err = read_weights(dir, m, hash_sources))) goto done;
    if (strcmp(arch, "gpt2") == 0) {
        for (int i = 0; i < m->n_tensors && !err; i++)
            if (hf_gpt2_is_conv1d(m->tensors[i].name)) err = transpose2d(m, &m->tensors[i]);
        if (err) goto done;
    }
    if (smelt_file_exists(tok_path)) {
        if ((err = smelt_read_file(tok_path, MAX_TOKENIZER_BYTES, &m->tokenizer_json, NULL))) goto done;
        if ((err = provenance_add_file(m, tok_path, hash_sources))) goto done;
    }
    if ((err = hf_build_graph(m, dir))) goto done;
    *out = m;
    m = NULL;
done:
    smelt_model_free(m);
    free(text);
    free(arch);
    free(cfg_path);
    free(tok_path);
    return err;
}
