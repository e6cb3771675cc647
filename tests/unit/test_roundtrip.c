/* The teacher (2 bf16 shards) through import -> .smelt -> export: every tensor byte for byte equal
 * to the original checkpoint, the artifact's tensors mmapped and 64-byte aligned, and the graph and
 * config unchanged. Also tiny-llama converted to f16 and back within f16 precision. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/artifact.h"
#include "formats/hf_model.h"
#include "formats/safetensors.h"

static void same_tensors(const smelt_model *a, const smelt_model *b)
{
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (int i = 0; i < a->n_tensors; i++) {
        const smelt_tensor *x = &a->tensors[i];
        const smelt_tensor *y = smelt_model_find(b, x->name);
        if (!y) fail_msg("tensor '%s' lost", x->name);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        for (int d = 0; d < x->ndim; d++) assert_int_equal(x->shape[d], y->shape[d]);
        assert_int_equal(x->nbytes, y->nbytes);
        if (memcmp(x->data, y->data, x->nbytes) != 0) fail_msg("tensor '%s' bytes differ", x->name);
    }
}

static void teacher_roundtrip(void **state)
{
    (void)state;
    char dir[] = "/tmp/smelt-rt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char art[128], out[128], st[160];
    snprintf(art, sizeof art, "%s/teacher.smelt", dir);
    snprintf(out, sizeof out, "%s/hf", dir);
    snprintf(st, sizeof st, "%s/model.safetensors", out);

    smelt_model *orig = NULL, *loaded = NULL;
    smelt_err *err = hf_import("models/llama-teacher", true, &orig);
    if (err) fail_msg("%s", smelt_err_msg(err));
    artifact_write_opts wo = {"any", "test", "test"};
    if ((err = artifact_write(art, orig, &wo))) fail_msg("%s", smelt_err_msg(err));
    if ((err = artifact_read(art, &loaded))) fail_msg("%s", smelt_err_msg(err));
    same_tensors(orig, loaded);
    for (int i = 0; i < loaded->n_tensors; i++) assert_int_equal((uintptr_t)loaded->tensors[i].data % 64, 0);
    assert_int_equal(loaded->kind, SMELT_KIND_LLM);
    assert_string_equal(loaded->arch, "llama");
    assert_memory_equal(&loaded->llm, &orig->llm, sizeof orig->llm);
    assert_int_equal(loaded->n_nodes, orig->n_nodes);
    for (int i = 0; i < orig->n_nodes; i++) {
        assert_string_equal(loaded->nodes[i].op, orig->nodes[i].op);
        assert_int_equal(loaded->nodes[i].n_inputs, orig->nodes[i].n_inputs);
        for (int k = 0; k < orig->nodes[i].n_inputs; k++) assert_string_equal(loaded->nodes[i].inputs[k], orig->nodes[i].inputs[k]);
    }
    assert_string_equal(loaded->tokenizer_json, orig->tokenizer_json);
    assert_string_equal(loaded->hf_config_json, orig->hf_config_json);

    if ((err = hf_export(loaded, out))) fail_msg("%s", smelt_err_msg(err));
    smelt_model *back = smelt_model_new(SMELT_KIND_GRAPH, "t");
    if ((err = safetensors_read(st, back, NULL))) fail_msg("%s", smelt_err_msg(err));
    same_tensors(orig, back);
    smelt_model_free(back);
    smelt_model_free(loaded);
    smelt_model_free(orig);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void f16_conversion(void **state)
{
    (void)state;
    smelt_model *a = NULL, *b = NULL;
    assert_null(hf_import("models/tiny-llama", false, &a));
    assert_null(hf_import("models/tiny-llama", false, &b));
    assert_null(smelt_model_convert_dtype(b, SMELT_DT_F16));
    for (int i = 0; i < a->n_tensors; i++) {
        const smelt_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        assert_int_equal(y->dtype, SMELT_DT_F16);
        assert_int_equal(y->nbytes * 2, x->nbytes);
        const float *xf = x->data;
        const uint16_t *yh = y->data;
        for (size_t k = 0; k < x->nbytes / 4; k++) assert_int_equal(yh[k], smelt_f32_to_f16(xf[k]));
    }
    smelt_model_free(a);
    smelt_model_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(teacher_roundtrip), cmocka_unit_test(f16_conversion)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
