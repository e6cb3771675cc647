/* Hugging Face tokenizer.json: byte-level BPE (GPT-2 style), with added/special tokens.
 *
 * Encoding splits the text on added tokens, pre-tokenizes the rest with the GPT-2 regex, maps each
 * piece's bytes through the byte->unicode table and applies merges by rank. Decoding concatenates
 * token strings and maps them back to bytes, so decode(encode(x)) == x for any bytes x.
 */
#ifndef SMELT_TOKENIZER_H
#define SMELT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct smelt_tokenizer smelt_tokenizer;

/* Parses tokenizer.json text; source names it in error messages. Caller frees with
 * smelt_tokenizer_free. Unsupported models/pre-tokenizers give an error saying what is supported. */
smelt_err *smelt_tokenizer_load(const char *json_text, size_t len, const char *source, smelt_tokenizer **out);
smelt_err *smelt_tokenizer_load_file(const char *path, smelt_tokenizer **out);
void smelt_tokenizer_free(smelt_tokenizer *t);

/* Encodes len bytes of text (nothing added or stripped). *ids is malloc'd, caller frees. */
smelt_err *smelt_tokenizer_encode(const smelt_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids);
/* Decodes ids to bytes; *text is malloc'd and NUL-terminated, caller frees. Ids out of range are an error. */
smelt_err *smelt_tokenizer_decode(const smelt_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, size_t *len);
int smelt_tokenizer_vocab_size(const smelt_tokenizer *t);
/* The id of a token string, or -1. */
int32_t smelt_tokenizer_token_id(const smelt_tokenizer *t, const char *token);

#endif
