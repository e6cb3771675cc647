/* Calibration data: windows of token ids cut from domain text files, deterministically. Each file
 * (a FILE or FILE:TOKENS argument) gives TOKENS tokens, by default an equal share of the total (in
 * whole windows, the remainder to the first files),
 * as whole windows spread evenly over its token stream (documents tokenized as in the perplexity
 * protocol, so calibration sees the same end-of-text tokens as evaluation). */
#ifndef SMELT_CALIB_H
#define SMELT_CALIB_H

#include <stdint.h>

#include "formats/tokenizer.h"

/* specs: "path" or "path:TOKENS". total_tokens is split among specs without a count. On success
 * *ids holds *n_windows windows of `window` tokens back to back (caller frees). */
smelt_err *calib_windows(const smelt_tokenizer *t, int32_t eos_id, const char *const *specs, int n_specs, int64_t total_tokens, int window,
                         int32_t **ids, int *n_windows);

#endif
