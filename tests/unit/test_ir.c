/* The IR: tensor table, duplicate names, node validation, quantization references, parameter
 * counting (quantized weights count, their scales do not), dtype conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/ir.h"

static void tensors_and_nodes(void **state)
{
    (void)state;
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "test");
    int64_t shape[2] = {4, 8};
    float *w = smelt_model_alloc(m, 32 * sizeof(float));
    assert_non_null(w);
    assert_int_equal((uintptr_t)w % 64, 0);
    smelt_tensor *t;
    assert_null(smelt_model_add_tensor(m, "w", SMELT_DT_F32, 2, shape, w, &t));
    assert_int_equal(t->nbytes, 128);
    smelt_err *err = smelt_model_add_tensor(m, "w", SMELT_DT_F32, 2, shape, w, NULL);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), "tensor 'w' appears twice");
    assert_int_equal(smelt_err_kind_of(err), SMELT_E_CORRUPT);
    assert_non_null(strstr(smelt_err_where(err), "core/ir.c:"));
    smelt_err_free(err);
    int64_t neg[1] = {-3};
    err = smelt_model_add_tensor(m, "neg", SMELT_DT_F32, 1, neg, w, NULL);
    assert_non_null(err);
    smelt_err_free(err);

    m->inputs = calloc(1, sizeof *m->inputs);
    m->n_inputs = 1;
    m->inputs[0].name = strdup("x");
    const char *in[2] = {"x", "w"}, *out[1] = {"y"};
    assert_non_null(smelt_model_add_node(m, "MatMul", "", "mm", 2, in, 1, out));
    assert_null(smelt_model_validate(m));
    const char *bad[2] = {"y", "nope"}, *out2[1] = {"z"};
    smelt_node *n = smelt_model_add_node(m, "Add", "", "add", 2, bad, 1, out2);
    assert_true(smelt_node_set_int(n, "axis", -1));
    assert_true(smelt_node_set_string(n, "mode", "x"));
    assert_int_equal(smelt_node_attr(n, "axis")->i, -1);
    assert_null(smelt_node_attr(n, "missing"));
    err = smelt_model_validate(m);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), "node 'add' (Add): input 'nope' is not a tensor, a graph input or an earlier output");
    smelt_err_free(err);
    smelt_model_free(m);
}

static void quantized_params(void **state)
{
    (void)state;
    smelt_model *m = smelt_model_new(SMELT_KIND_LLM, "llama");
    int64_t wshape[2] = {4, 64}, sshape[2] = {4, 2}, ids[1] = {5};
    smelt_tensor *q;
    assert_null(smelt_model_add_tensor(m, "w", SMELT_DT_U4, 2, wshape, smelt_model_alloc(m, 128), &q));
    assert_int_equal(q->nbytes, 128);
    q->quant = (smelt_quant){SMELT_QUANT_GROUP, 4, 0, 32, false, strdup("w.scale"), strdup("w.zero"), SMELT_DT_BF16};
    smelt_err *err = smelt_model_validate(m);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "scale tensor 'w.scale' missing"));
    smelt_err_free(err);
    assert_null(smelt_model_add_tensor(m, "w.scale", SMELT_DT_F32, 2, sshape, smelt_model_alloc(m, 32), NULL));
    err = smelt_model_validate(m);
    assert_non_null(strstr(smelt_err_msg(err), "zero-point tensor 'w.zero' missing"));
    smelt_err_free(err);
    assert_null(smelt_model_add_tensor(m, "w.zero", SMELT_DT_U8, 2, sshape, smelt_model_alloc(m, 8), NULL));
    assert_null(smelt_model_add_tensor(m, "ids", SMELT_DT_I64, 1, ids, smelt_model_alloc(m, 40), NULL));
    assert_null(smelt_model_validate(m));
    /* 256 quantized weights count; scales, zero points and integer ids do not */
    assert_int_equal(smelt_model_param_count(m), 256);
    smelt_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(tensors_and_nodes), cmocka_unit_test(quantized_params)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
