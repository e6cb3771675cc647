/* Students from teacher layers or from a config (see student.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/rng.h"
#include "distill/student.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf_config.h"
#include "formats/hf_model.h"

smelt_err *student_parse_layers(const char *spec, int n_layers, int **layers, int *n)
{
    *layers = NULL;
    *n = 0;
    int *v = malloc((strlen(spec) / 2 + 2) * sizeof *v), k = 0;
    if (!v) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    const char *p = spec;
    while (*p) {
        char *end;
        errno = 0;
        long l = strtol(p, &end, 10);
        if (end == p || errno || (*end && *end != ',')) {
            free(v);
            return SMELT_ERR(SMELT_E_INVALID, "--keep-layers '%s': expected comma-separated layer indices like 0,2,4", spec);
        }
        if (l < 0 || l >= n_layers) {
            free(v);
            return SMELT_ERR(SMELT_E_INVALID, "--keep-layers '%s': layer %ld is out of range (the teacher has layers 0..%d)", spec, l, n_layers - 1);
        }
        if (k && l <= v[k - 1]) {
            free(v);
            return SMELT_ERR(SMELT_E_INVALID, "--keep-layers '%s': indices must increase", spec);
        }
        v[k++] = (int)l;
        p = *end ? end + 1 : end;
    }
    if (!k) {
        free(v);
        return SMELT_ERR(SMELT_E_INVALID, "--keep-layers '%s': no layers", spec);
    }
    *layers = v;
    *n = k;
    return NULL;
}

smelt_err *student_every_layers(int every, int n_layers, int **layers, int *n)
{
    if (every < 1 || every > n_layers) return SMELT_ERR(SMELT_E_INVALID, "--keep-every %d: expected 1..%d (the teacher's layers)", every, n_layers);
    int k = (n_layers + every - 1) / every;
    int *v = malloc((size_t)k * sizeof *v);
    if (!v) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; i < k; i++) v[i] = i * every;
    *layers = v;
    *n = k;
    return NULL;
}

smelt_err *student_from_layers(const smelt_model *teacher, const char *teacher_name, const int *layers, int n, tm_model **out)
{
    tm_config c;
    SMELT_TRY(tm_config_from_llm(teacher, teacher_name, &c));
    for (int i = 0; i < n; i++)
        if (layers[i] < 0 || layers[i] >= c.L) return SMELT_ERR(SMELT_E_INVALID, "layer %d is out of range (the teacher has layers 0..%d)", layers[i], c.L - 1);
    c.L = n;
    SMELT_TRY(tm_new(&c, out));
    smelt_err *err = tm_load_from(*out, teacher, layers, teacher_name);
    if (err) {
        tm_free(*out);
        *out = NULL;
    }
    return err;
}

/* Copies teacher tensor `name` into student tensor idx when the shapes agree; returns whether it did. */
static bool copy_if_same(tm_model *m, int idx, const smelt_model *teacher, const char *name)
{
    const smelt_tensor *s = smelt_model_find(teacher, name);
    const tm_tensor *t = &m->tensors[idx];
    if (!s || s->quant.kind != SMELT_QUANT_NONE || !smelt_dtype_traits(s->dtype)->is_float || s->ndim != t->ndim || s->shape[0] != t->shape[0] ||
        (t->ndim == 2 && s->shape[1] != t->shape[1]))
        return false;
    smelt_convert_float(tm_w(m, idx), SMELT_DT_F32, s->data, s->dtype, t->numel);
    return true;
}

smelt_err *student_from_config(const smelt_model *teacher, const char *teacher_name, const char *config_path, uint64_t seed, tm_model **out)
{
    *out = NULL;
    tm_config tc, c;
    SMELT_TRY(tm_config_from_llm(teacher, teacher_name, &tc));
    char *text = NULL, *arch = NULL;
    size_t len;
    SMELT_TRY(smelt_read_file(config_path, 4u << 20, &text, &len));
    smelt_model *tmp = smelt_model_new(SMELT_KIND_LLM, "llama"); /* arch replaced by the config's */
    smelt_err *err = tmp ? hf_config_parse(config_path, text, len, &arch, &tmp->llm) : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    free(text);
    if (!err) {
        free(tmp->arch);
        tmp->arch = arch;
        err = tm_config_from_llm(tmp, config_path, &c);
    } else {
        free(arch);
    }
    smelt_model_free(tmp);
    if (err) return err;
    if (c.V != tc.V)
        return SMELT_ERR(SMELT_E_INVALID, "%s: vocab_size %d differs from the teacher's %d (student and teacher must share the vocabulary)", config_path, c.V, tc.V);
    if (c.max_pos < 1) c.max_pos = tc.max_pos;
    c.bos_id = tc.bos_id, c.eos_id = tc.eos_id;
    SMELT_TRY(tm_new(&c, out));
    tm_model *m = *out;
    /* matrices: uniform with standard deviation 1/sqrt(fan_in), the output projections scaled down by
     * sqrt(2 L) so the residual stream starts near the embedding's scale; norms one, biases zero */
    uint64_t s = seed ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < m->n_tensors; i++) {
        tm_tensor *t = &m->tensors[i];
        float *w = tm_w(m, i);
        if (t->kind == TM_K_NORM || t->kind == TM_K_BIAS) {
            for (size_t k = 0; k < t->numel; k++) w[k] = t->kind == TM_K_NORM ? 1.0f : 0.0f;
            continue;
        }
        double std = 1.0 / sqrt((double)t->shape[1]);
        if (strstr(t->name, "o_proj") || strstr(t->name, "down_proj") || strstr(t->name, ".c_proj.")) std /= sqrt(2.0 * (c.L ? c.L : 1));
        float a = (float)(std * sqrt(3.0));
        for (size_t k = 0; k < t->numel; k++) w[k] = ((float)(smelt_splitmix64(&s) >> 40) / 16777216.0f * 2 - 1) * a;
    }
    /* the token embedding carries over across architectures (same vocabulary, same width); the final
     * norm and GPT-2's position table only between models of the same architecture */
    char nm[128];
    const char *p2 = tc.arch == TM_GPT2 ? hf_gpt2_prefix(teacher) : "";
    const char *embed = tc.arch == TM_GPT2 ? (snprintf(nm, sizeof nm, "%swte.weight", p2), nm) : "model.embed_tokens.weight";
    copy_if_same(m, tm_idx_embed(m), teacher, embed);
    if (!c.tied) copy_if_same(m, tm_idx_head(m), teacher, tc.tied ? embed : "lm_head.weight");
    if (c.arch == TM_LLAMA && tc.arch == TM_LLAMA) copy_if_same(m, tm_idx_norm(m), teacher, "model.norm.weight");
    if (c.arch == TM_GPT2 && tc.arch == TM_GPT2) {
        char n2[128];
        snprintf(n2, sizeof n2, "%sln_f.weight", p2);
        copy_if_same(m, tm_idx_norm(m), teacher, n2);
        snprintf(n2, sizeof n2, "%sln_f.bias", p2);
        copy_if_same(m, tm_idx_norm(m) + 1, teacher, n2);
        snprintf(n2, sizeof n2, "%swpe.weight", p2);
        copy_if_same(m, tm_idx_pos(m), teacher, n2);
    }
    return NULL;
}
