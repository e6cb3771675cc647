/* Exporting an LLM back to a Hugging Face folder: config.json, model.safetensors, tokenizer.json.
 * The folder is assembled under a temporary name beside the target and renamed into place, so a
 * failed export leaves nothing behind. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "formats/safetensors.h"

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return false;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return empty;
}

/* Removes the files export may have written into tmp, then tmp itself. */
static void remove_tmp_dir(const char *tmp)
{
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = smelt_path_join(tmp, files[i]);
        if (p) unlink(p);
        free(p);
    }
    rmdir(tmp);
}

/* Copies a GPT-2 Linear weight [out, in] back to Conv1D layout [in, out]. */
static void *untranspose(const smelt_tensor *t, int64_t shape[2])
{
    size_t es = (size_t)smelt_dtype_traits(t->dtype)->bits / 8;
    int64_t r = t->shape[0], c = t->shape[1];
    uint8_t *dst = malloc(t->nbytes ? t->nbytes : 1);
    if (!dst) return NULL;
    const uint8_t *src = t->data;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) memcpy(dst + ((size_t)j * (size_t)r + (size_t)i) * es, src + ((size_t)i * (size_t)c + (size_t)j) * es, es);
    shape[0] = c;
    shape[1] = r;
    return dst;
}

static smelt_err *write_weights(const smelt_model *m, const char *path)
{
    safetensors_entry *es = calloc((size_t)m->n_tensors + 1, sizeof *es);
    void **owned = calloc((size_t)m->n_tensors + 1, sizeof *owned);
    int64_t(*shapes)[2] = calloc((size_t)m->n_tensors + 1, sizeof *shapes);
    smelt_err *err = NULL;
    if (!es || !owned || !shapes) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    bool gpt2 = strcmp(m->arch, "gpt2") == 0;
    for (int i = 0; i < m->n_tensors && !err; i++) {
        const smelt_tensor *t = &m->tensors[i];
        if (t->quant.kind != SMELT_QUANT_NONE) {
            err = SMELT_ERR(SMELT_E_UNSUPPORTED, "tensor '%s' is quantized (%d-bit); Hugging Face export needs float weights", t->name, t->quant.bits);
            break;
        }
        es[i] = (safetensors_entry){t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes};
        if (gpt2 && hf_gpt2_is_conv1d(t->name) && t->ndim == 2) {
            if (!(owned[i] = untranspose(t, shapes[i]))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            es[i].data = owned[i];
            es[i].shape = shapes[i];
        }
    }
    if (!err) err = safetensors_write(path, es, m->n_tensors, NULL);
    for (int i = 0; owned && i < m->n_tensors; i++) free(owned[i]);
    free(owned);
    free(shapes);
    free(es);
    return err;
}

static smelt_err *write_all(const smelt_model *m, const char *tmp)
{
    char *cfg = smelt_path_join(tmp, "config.json"), *st = smelt_path_join(tmp, "model.safetensors"), *tok = smelt_path_join(tmp, "tokenizer.json");
    smelt_err *err = NULL;
    if (!cfg || !st || !tok) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!err) {
        if (m->hf_config_json) {
            err = smelt_write_file_atomic(cfg, m->hf_config_json, strlen(m->hf_config_json));
        } else {
            json_t *o = hf_config_to_json(m->arch, &m->llm);
            char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
            err = s ? smelt_write_file_atomic(cfg, s, strlen(s)) : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            free(s);
            json_decref(o);
        }
    }
    if (!err) err = write_weights(m, st);
    if (!err && m->tokenizer_json) err = smelt_write_file_atomic(tok, m->tokenizer_json, strlen(m->tokenizer_json));
    free(cfg);
    free(st);
    free(tok);
    return err;
}

smelt_err *hf_export(const smelt_model *m, const char *dir)
{
    if (m->kind != SMELT_KIND_LLM)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: only language models can be exported as a Hugging Face folder (this is a %s graph)", dir, m->arch);
    bool exists = smelt_file_exists(dir);
    if (exists && !(smelt_is_dir(dir) && dir_is_empty(dir)))
        return SMELT_ERR(SMELT_E_INVALID, "%s: already exists and is not an empty folder", dir);
    size_t n = strlen(dir);
    char *tmp = malloc(n + 16);
    if (!tmp) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    while (n > 1 && dir[n - 1] == '/') n--;
    snprintf(tmp, n + 16, "%.*s.tmp-XXXXXX", (int)n, dir);
    if (!mkdtemp(tmp)) {
        smelt_err *e = SMELT_ERR(SMELT_E_IO, "%s: cannot create a folder beside it: %s", dir, strerror(errno));
        free(tmp);
        return e;
    }
    smelt_err *err = write_all(m, tmp);
    if (!err && exists && rmdir(dir) != 0) err = SMELT_ERR(SMELT_E_IO, "%s: cannot replace the empty folder: %s", dir, strerror(errno));
    if (!err && rename(tmp, dir) != 0) err = SMELT_ERR(SMELT_E_IO, "%s: cannot rename into place: %s", dir, strerror(errno));
    if (err) remove_tmp_dir(tmp);
    free(tmp);
    return err;
}
