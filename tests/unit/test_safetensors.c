/* safetensors: every corrupt file in tests/data/bad/st_* gives its own error (kind and message),
 * writing then reading is byte-exact, and sharded checkpoints are checked against their index. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "formats/safetensors.h"

typedef struct {
    const char *file;
    smelt_err_kind kind;
    const char *message; /* substring the error must contain */
} bad_case;

static const bad_case bad_cases[] = {
    {"st_empty", SMELT_E_TRUNCATED, "file is 0 bytes, too short for the 8-byte header length"},
    {"st_short", SMELT_E_TRUNCATED, "file is 3 bytes"},
    {"st_header_past_end", SMELT_E_TRUNCATED, "header length 4096 runs past the end of the file"},
    {"st_header_huge", SMELT_E_CORRUPT, "header length 1099511627776 is more than the"},
    {"st_bad_json", SMELT_E_CORRUPT, "header is not valid JSON"},
    {"st_not_object", SMELT_E_CORRUPT, "header is not a JSON object"},
    {"st_unknown_dtype", SMELT_E_UNSUPPORTED, "tensor 'a': unknown dtype 'F8_E4M3', expected one of"},
    {"st_size_mismatch", SMELT_E_CORRUPT, "tensor 'a': F32 [3] needs 12 bytes but data_offsets give 8"},
    {"st_offsets_reversed", SMELT_E_CORRUPT, "tensor 'a': data_offsets [8, 0] out of order"},
    {"st_out_of_range", SMELT_E_TRUNCATED, "tensor 'a': data_offsets [0, 16] run past the data (8 bytes)"},
    {"st_overlap", SMELT_E_CORRUPT, "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"},
    {"st_hole", SMELT_E_CORRUPT, "tensor 'b': data_offsets [8, 12] leave a hole of 4 bytes"},
    {"st_trailing", SMELT_E_CORRUPT, "4 bytes of data after the last tensor"},
    {"st_duplicate", SMELT_E_CORRUPT, "duplicate object key"},
    {"st_negative_shape", SMELT_E_CORRUPT, "tensor 'a': shape[0] is not a non-negative integer"},
    {"st_shape_overflow", SMELT_E_CORRUPT, "tensor 'a': shape overflows"},
    {"st_missing_offsets", SMELT_E_CORRUPT, "tensor 'a': 'data_offsets' must be two non-negative integers"},
    {"st_truncated_data", SMELT_E_TRUNCATED, "tensor 'a': data_offsets [0, 16] run past the data (11 bytes)"},
};

static void corrupt_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/bad/%s.safetensors", bad_cases[i].file);
        smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "t");
        smelt_err *err = safetensors_read(path, m, NULL);
        if (!err) fail_msg("%s: read succeeded", path);
        const char *msg = smelt_err_msg(err);
        if (!strstr(msg, bad_cases[i].message) || strncmp(msg, path, strlen(path)) != 0)
            fail_msg("%s: message '%s' lacks '%s' or does not start with the path", path, msg, bad_cases[i].message);
        if (smelt_err_kind_of(err) != bad_cases[i].kind) fail_msg("%s: kind %d, expected %d", path, smelt_err_kind_of(err), bad_cases[i].kind);
        assert_int_equal(m->n_tensors, 0);
        smelt_err_free(err);
        smelt_model_free(m);
    }
}

static void write_read_roundtrip(void **state)
{
    (void)state;
    char dir[] = "/tmp/smelt-st-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[3] = {0x3f80, 0xbf80, 0x7f80};
    int8_t c[5] = {-128, -1, 0, 1, 127};
    int64_t sa[2] = {2, 3}, sb[1] = {3}, sc[1] = {5}, sz[2] = {0, 4};
    safetensors_entry es[4] = {
        {"w.a", SMELT_DT_F32, 2, sa, a, sizeof a},
        {"w.b", SMELT_DT_BF16, 1, sb, b, sizeof b},
        {"w.c", SMELT_DT_I8, 1, sc, c, sizeof c},
        {"empty", SMELT_DT_F32, 2, sz, NULL, 0},
    };
    json_t *meta = json_pack("{s:s}", "format", "pt");
    assert_null(safetensors_write(path, es, 4, meta));
    json_decref(meta);
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "t");
    json_t *got_meta = NULL;
    smelt_err *err = safetensors_read(path, m, &got_meta);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_string_equal(json_string_value(json_object_get(got_meta, "format")), "pt");
    json_decref(got_meta);
    assert_int_equal(m->n_tensors, 4);
    smelt_tensor *t = smelt_model_find(m, "w.a");
    assert_non_null(t);
    assert_int_equal(t->dtype, SMELT_DT_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[1], 3);
    assert_memory_equal(t->data, a, sizeof a);
    t = smelt_model_find(m, "w.b");
    assert_memory_equal(t->data, b, sizeof b);
    t = smelt_model_find(m, "w.c");
    assert_memory_equal(t->data, c, sizeof c);
    assert_int_equal(smelt_model_find(m, "empty")->nbytes, 0);
    smelt_model_free(m);
    /* A write into a folder that does not exist fails and leaves nothing behind. */
    snprintf(path, sizeof path, "%s/missing/rt.safetensors", dir);
    err = safetensors_write(path, es, 1, NULL);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "cannot create"));
    smelt_err_free(err);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

static void teacher_shards(void **state)
{
    (void)state;
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "t");
    smelt_err *err = safetensors_read_sharded("models/llama-teacher/model.safetensors.index.json", m);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_int_equal(m->n_tensors, 57);
    assert_int_equal(smelt_model_param_count(m), 6819072);
    smelt_tensor *t = smelt_model_find(m, "model.layers.5.mlp.down_proj.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, SMELT_DT_BF16);
    assert_int_equal(t->shape[0], 256);
    assert_int_equal(t->shape[1], 768);
    smelt_model_free(m);
}

/* Writes an index naming shard files, for the sharding error cases. */
static void write_index(const char *dir, const char *weight_map_json)
{
    char path[256], text[512];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    snprintf(text, sizeof text, "{\"metadata\": {}, \"weight_map\": %s}", weight_map_json);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void shard_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/smelt-shard-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], idx[256];
    snprintf(path, sizeof path, "%s/s1.safetensors", dir);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    float a[2] = {1, 2};
    int64_t sh[1] = {2};
    safetensors_entry es[2] = {{"a", SMELT_DT_F32, 1, sh, a, 8}, {"b", SMELT_DT_F32, 1, sh, a, 8}};
    assert_null(safetensors_write(path, es, 2, NULL));
    static const struct {
        const char *map, *message;
    } cases[] = {
        {"{\"a\": \"s1.safetensors\"}", "s1.safetensors: tensor 'b' is not listed in model.safetensors.index.json"},
        {"{\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": \"s1.safetensors\"}", "tensor 'c' is missing from shard 's1.safetensors'"},
        {"{\"a\": \"../s1.safetensors\"}", "shard '../s1.safetensors' is not a path inside the model folder"},
        {"{\"a\": \"/etc/passwd\"}", "shard '/etc/passwd' is not a path inside the model folder"},
        {"{\"a\": \"nope.safetensors\"}", "nope.safetensors: cannot open"},
        {"{\"a\": 3}", "weight_map 'a': shard file name is not a string"},
        {"{}", "missing non-empty object 'weight_map'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_index(dir, cases[i].map);
        smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "t");
        smelt_err *err = safetensors_read_sharded(idx, m);
        if (!err) fail_msg("case %zu: no error", i);
        if (!strstr(smelt_err_msg(err), cases[i].message)) fail_msg("case %zu: '%s' lacks '%s'", i, smelt_err_msg(err), cases[i].message);
        smelt_err_free(err);
        smelt_model_free(m);
    }
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corrupt_files),
        cmocka_unit_test(write_read_roundtrip),
        cmocka_unit_test(teacher_shards),
        cmocka_unit_test(shard_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
