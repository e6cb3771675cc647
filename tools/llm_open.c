/* Opening a language model with its tokenizer and engine, for the tools. */
#include "tools/llm_open.h"

#include <string.h>

#include "formats/load.h"

smelt_err *llm_open(const char *path, llm_open_model *o)
{
    memset(o, 0, sizeof *o);
    smelt_err *err = smelt_load_model(path, false, &o->model);
    if (!err && o->model->kind != SMELT_KIND_LLM)
        err = SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: an ONNX graph; running ONNX language models needs the graph executor (not yet wired to this command)", path);
    if (!err && !o->model->tokenizer_json) err = SMELT_ERR(SMELT_E_INVALID, "%s: the model has no tokenizer.json", path);
    if (!err) err = smelt_err_wrap(smelt_tokenizer_load(o->model->tokenizer_json, strlen(o->model->tokenizer_json), "tokenizer.json", &o->tok), "%s", path);
    if (!err) err = smelt_err_wrap(llm_engine_new(o->model, &o->engine), "%s", path);
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
    if (o->model->llm.eos_id >= 0) return o->model->llm.eos_id;
    return smelt_tokenizer_token_id(o->tok, "<|endoftext|>");
}
