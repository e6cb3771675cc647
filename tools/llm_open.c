/* Opening a language model with its tokenizer and engine, for the tools. An .onnx decoder takes its
 * tokenizer.json (and context length, from config.json's max_position_embeddings) from its folder. */
#define _POSIX_C_SOURCE 200809L
#include "tools/llm_open.h"

#include <stdlib.h>
#include <string.h>

#include "formats/load.h"

/* Context allowed for an ONNX decoder whose folder has no config.json to say. */
#define GRAPH_DEFAULT_CONTEXT 2048

static char *sibling(const char *path, const char *name)
{
    char *dir = strdup(path);
    if (!dir) return NULL;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    char *p = smelt_path_join(slash ? dir : ".", name);
    free(dir);
    return p;
}

static int sibling_context(const char *path)
{
    char *cfg = sibling(path, "config.json");
    json_t *root = cfg && smelt_file_exists(cfg) ? json_load_file(cfg, 0, NULL) : NULL;
    json_t *v = json_object_get(root, "max_position_embeddings");
    int ctx = json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < (1 << 24) ? (int)json_integer_value(v) : GRAPH_DEFAULT_CONTEXT;
    json_decref(root);
    free(cfg);
    return ctx;
}

smelt_err *llm_open(const char *path, llm_open_model *o)
{
    memset(o, 0, sizeof *o);
    smelt_err *err = smelt_load_model(path, false, &o->model);
    bool graph = !err && o->model->kind == SMELT_KIND_GRAPH;
    if (graph && !o->model->tokenizer_json) {
        char *tok = sibling(path, "tokenizer.json");
        if (!tok) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        else if (!smelt_file_exists(tok)) err = SMELT_ERR(SMELT_E_INVALID, "%s: no tokenizer.json in the model's folder (%s)", path, tok);
        else err = smelt_tokenizer_load_file(tok, &o->tok);
        free(tok);
    } else if (!err) {
        if (!o->model->tokenizer_json) err = SMELT_ERR(SMELT_E_INVALID, "%s: the model has no tokenizer.json", path);
        else err = smelt_err_wrap(smelt_tokenizer_load(o->model->tokenizer_json, strlen(o->model->tokenizer_json), "tokenizer.json", &o->tok), "%s", path);
    }
    if (!err && graph)
        err = smelt_err_wrap(llm_engine_new_graph(o->model, smelt_tokenizer_vocab_size(o->tok), sibling_context(path), &o->engine), "%s", path);
    else if (!err) err = smelt_err_wrap(llm_engine_new(o->model, &o->engine), "%s", path);
    if (err) llm_close(o);
    return err;
}

void llm_close(llm_open_model *o)
{
    llm_engine_free(o->engine);
    smelt_tokenizer_free(o->tok);
    smelt_model_free(o->model);
    memset(o, 0, sizeof *o);
}

int32_t llm_eos_id(const llm_open_model *o)
{
    if (o->model->kind == SMELT_KIND_LLM && o->model->llm.eos_id >= 0) return o->model->llm.eos_id;
    return smelt_tokenizer_token_id(o->tok, "<|endoftext|>");
}
