/* Cutting calibration windows out of domain text files (see calib.h). */
#define _POSIX_C_SOURCE 200809L
#include "quant/calib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "evals/perplexity.h"

/* "path:TOKENS" -> path (malloc'd) and tokens; "path" -> tokens 0 */
static smelt_err *parse_spec(const char *spec, char **path, int64_t *tokens)
{
    *tokens = 0;
    const char *colon = strrchr(spec, ':');
    char *end = NULL;
    if (colon && colon[1]) {
        errno = 0;
        long long v = strtoll(colon + 1, &end, 10);
        if (*end == 0 && errno == 0) {
            if (v <= 0) return SMELT_ERR(SMELT_E_INVALID, "--calib '%s': the token count must be positive", spec);
            *tokens = v;
            *path = strndup(spec, (size_t)(colon - spec));
            return *path ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        }
    }
    *path = strdup(spec);
    return *path ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}

smelt_err *calib_windows(const smelt_tokenizer *t, int32_t eos_id, const char *const *specs, int n_specs, int64_t total_tokens, int window,
                         int32_t **ids_out, int *n_windows_out)
{
    *ids_out = NULL;
    *n_windows_out = 0;
    if (n_specs < 1) return SMELT_ERR(SMELT_E_INVALID, "no calibration files (--calib FILE[:TOKENS])");
    /* the files without a count share total_tokens in whole windows, the remainder going one
     * window each to the first of them (32768 tokens over 3 files: 43 + 43 + 42 windows) */
    int n_free = 0;
    for (int f = 0; f < n_specs; f++) {
        char *p = NULL;
        int64_t v = 0;
        smelt_err *e = parse_spec(specs[f], &p, &v);
        free(p);
        if (e) return e;
        n_free += v == 0;
    }
    int64_t total_windows = total_tokens / window, free_idx = 0;
    int32_t *all = NULL;
    int n_all = 0;
    smelt_err *err = NULL;
    for (int f = 0; !err && f < n_specs; f++) {
        char *path = NULL, *text = NULL;
        int64_t want;
        int32_t *ids = NULL;
        size_t n_ids = 0, len = 0;
        err = parse_spec(specs[f], &path, &want);
        if (!err && want == 0) {
            want = (total_windows / n_free + (free_idx < total_windows % n_free)) * window;
            free_idx++;
        }
        if (!err) err = smelt_read_file(path, (size_t)1 << 32, &text, &len);
        if (!err) err = smelt_err_wrap(ppl_tokens_from_text(t, text, len, eos_id, &ids, &n_ids), "%s", path);
        int k = (int)(want / window); /* whole windows from this file */
        if (!err && (k < 1 || n_ids / (size_t)window < (size_t)k))
            err = SMELT_ERR(SMELT_E_INVALID, "%s: %zu tokens, too short for %d calibration windows of %d tokens", path, n_ids, k < 1 ? 1 : k, window);
        if (!err) {
            int32_t *grown = realloc(all, ((size_t)n_all + k) * window * sizeof *grown);
            if (!grown) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            else all = grown;
        }
        /* window i starts at i * (n_ids - window) / (k - 1): evenly spread, first and last included */
        for (int i = 0; !err && i < k; i++) {
            size_t start = k == 1 ? 0 : (size_t)i * (n_ids - (size_t)window) / (size_t)(k - 1);
            memcpy(all + (size_t)(n_all + i) * window, ids + start, (size_t)window * sizeof *ids);
        }
        if (!err) n_all += k;
        free(ids);
        free(text);
        free(path);
    }
    if (err) {
        free(all);
        return err;
    }
    *ids_out = all;
    *n_windows_out = n_all;
    return NULL;
}
