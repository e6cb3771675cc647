/* What `smelt run` and `smelt perplexity` (and later the eval stage) share: open a language model
 * from any path smelt reads, with its tokenizer and an engine over it. */
#ifndef SMELT_LLM_OPEN_H
#define SMELT_LLM_OPEN_H

#include "formats/tokenizer.h"
#include "runtime/llm.h"

typedef struct {
    smelt_model *model;
    smelt_tokenizer *tok;
    llm_engine *engine;
} llm_open_model;

/* Loads path (Hugging Face folder or .smelt artifact of a language model). Errors name the path. */
smelt_err *llm_open(const char *path, llm_open_model *out);
void llm_close(llm_open_model *o);
/* The end-of-text id: the config's eos, else the tokenizer's "<|endoftext|>", else -1. */
int32_t llm_eos_id(const llm_open_model *o);

#endif
