/* The byte-level BPE tokenizer against the fixtures: the val files must encode to exactly the ids
 * in data/val-ids.safetensors (produced by Hugging Face `tokenizers`), the reference prompt to the
 * ids in models/llama-teacher/reference.json, and decode(encode(x)) must give back x for any bytes.
 * Unsupported or corrupt tokenizer.json files are made by changing one field of the real one, so
 * each error is tested in isolation; tests/data/bad/tokenizer_* are the same cases as files. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/io.h"
#include "formats/safetensors.h"
#include "formats/tokenizer.h"

#define TOKENIZER "models/llama-teacher/tokenizer.json"

static smelt_tokenizer *load_real(void)
{
    smelt_tokenizer *t;
    smelt_err *err = smelt_tokenizer_load_file(TOKENIZER, &t);
    if (err) fail_msg("%s", smelt_err_msg(err));
    return t;
}

static void check_ok(smelt_err *err)
{
    if (err) fail_msg("unexpected error: %s", smelt_err_msg(err));
}

/* Encodes then decodes s and checks the bytes come back unchanged. */
static void round_trip(const smelt_tokenizer *t, const char *s, size_t n)
{
    int32_t *ids;
    size_t n_ids, len;
    char *back;
    check_ok(smelt_tokenizer_encode(t, s, n, &ids, &n_ids));
    check_ok(smelt_tokenizer_decode(t, ids, n_ids, &back, &len));
    if (len != n || memcmp(back, s, n) != 0) {
        size_t i = 0;
        while (i < n && i < len && back[i] == s[i]) i++;
        fail_msg("round trip of %zu bytes gave %zu bytes, first difference at byte %zu", n, len, i);
    }
    free(ids);
    free(back);
}

static void assert_ids(const smelt_tokenizer *t, const char *s, const int32_t *want, size_t n_want)
{
    int32_t *ids;
    size_t n;
    check_ok(smelt_tokenizer_encode(t, s, strlen(s), &ids, &n));
    for (size_t i = 0; i < n || i < n_want; i++)
        if (i >= n || i >= n_want || ids[i] != want[i])
            fail_msg("'%s': id %zu is %d, expected %d (%zu ids, expected %zu)", s, i, i < n ? ids[i] : -1, i < n_want ? want[i] : -1, n, n_want);
    free(ids);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Each val file, split into documents on "\n\x1e\n", each document encoded and followed by id 0. */
static void val_ids_exact(void **state)
{
    (void)state;
    smelt_tokenizer *t = load_real();
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "ids");
    check_ok(safetensors_read("data/val-ids.safetensors", m, NULL));
    static const char *const domains[] = {"prose", "quotes", "code"};
    double seconds = 0;
    size_t bytes = 0;
    for (int d = 0; d < 3; d++) {
        char path[64], name[32];
        snprintf(path, sizeof path, "data/%s.val.txt", domains[d]);
        snprintf(name, sizeof name, "ids.%s", domains[d]);
        char *text;
        size_t len;
        check_ok(smelt_read_file(path, 1u << 24, &text, &len));
        const smelt_tensor *want = smelt_model_find(m, name);
        assert_non_null(want);
        assert_int_equal(want->dtype, SMELT_DT_I32);
        assert_int_equal(want->ndim, 1);
        const int32_t *w = want->data;
        size_t at = 0;
        double t0 = now_s();
        for (const char *doc = text, *end = text + len;;) {
            const char *sep = memmem(doc, (size_t)(end - doc), "\n\x1e\n", 3);
            const char *doc_end = sep ? sep : end;
            int32_t *ids;
            size_t n;
            check_ok(smelt_tokenizer_encode(t, doc, (size_t)(doc_end - doc), &ids, &n));
            for (size_t i = 0; i <= n; i++, at++) {
                int32_t got = i < n ? ids[i] : 0;
                if (at >= (size_t)want->shape[0]) fail_msg("%s: more ids than the %lld expected", name, (long long)want->shape[0]);
                if (got != w[at]) fail_msg("%s: id %zu (document byte %zu) is %d, expected %d", name, at, (size_t)(doc - text), got, w[at]);
            }
            free(ids);
            if (!sep) break;
            doc = sep + 3;
        }
        seconds += now_s() - t0;
        bytes += len;
        assert_int_equal(at, (size_t)want->shape[0]);
        round_trip(t, text, len);
        free(text);
    }
    printf("encoded %zu bytes of val text in %.1f ms (%.1f MB/s)\n", bytes, seconds * 1e3, bytes / seconds / 1e6);
    smelt_model_free(m);
    smelt_tokenizer_free(t);
}

static void reference_prompt(void **state)
{
    (void)state;
    smelt_tokenizer *t = load_real();
    static const int32_t want[] = {495, 760, 905, 283, 3763, 287, 2109};
    assert_ids(t, "The quick brown fox", want, 7);
    char *s;
    size_t len;
    check_ok(smelt_tokenizer_decode(t, want, 7, &s, &len));
    assert_string_equal(s, "The quick brown fox");
    assert_int_equal(len, 19);
    free(s);
    assert_int_equal(smelt_tokenizer_vocab_size(t), 4096);
    assert_int_equal(smelt_tokenizer_token_id(t, "<|endoftext|>"), 0);
    assert_int_equal(smelt_tokenizer_token_id(t, "Ġthe"), smelt_tokenizer_token_id(t, "Ġthe"));
    assert_int_equal(smelt_tokenizer_token_id(t, "no such token here"), -1);
    smelt_tokenizer_free(t);
}

/* Added tokens are cut out before the regex, wherever they occur, even inside a word. */
static void added_tokens_split(void **state)
{
    (void)state;
    smelt_tokenizer *t = load_real();
    int32_t *a, *b;
    size_t na, nb;
    check_ok(smelt_tokenizer_encode(t, "fox", 3, &a, &na));
    check_ok(smelt_tokenizer_encode(t, "fox<|endoftext|>fox<|endoftext|>", 32, &b, &nb));
    assert_int_equal(nb, 2 * na + 2);
    assert_memory_equal(b, a, na * sizeof *a);
    assert_int_equal(b[na], 0);
    assert_memory_equal(b + na + 1, a, na * sizeof *a);
    assert_int_equal(b[nb - 1], 0);
    free(a);
    free(b);
    round_trip(t, "<|endoftext|><|endoftext|<|endoftext|>>", 39); /* one broken in the middle */
    smelt_tokenizer_free(t);
}

/* Arbitrary bytes, invalid UTF-8, NULs, long runs that stress the regex and the merge heap. */
static void round_trip_any_bytes(void **state)
{
    (void)state;
    smelt_tokenizer *t = load_real();
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char buf[4096];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = (size_t)(iter * 13) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* Bias towards spaces, letters and UTF-8 lead/continuation bytes so pieces form. */
            static const char pool[] = " \n\taZ9'\xc3\xa9\xe2\x80\x99\xf0\x9f\x98\x80\xff\x80";
            buf[i] = (x >> 40) & 1 ? (char)(x >> 48) : pool[(x >> 20) % (sizeof pool - 1)];
        }
        round_trip(t, buf, n);
    }
    round_trip(t, "", 0);
    round_trip(t, "\0", 1);
    static const char invalid[] = "\xff\xfe\xc3(\xe2\x82 \xf0\x28\x8c\x28 caf\xc3\xa9 \xed\xa0\x80";
    round_trip(t, invalid, sizeof invalid - 1);
    size_t big = 1u << 20;
    char *s = malloc(big);
    assert_non_null(s);
    static const char fills[] = {' ', 'a', '\xff', '.', '\n', '7'};
    for (size_t f = 0; f < sizeof fills; f++) {
        memset(s, fills[f], big);
        round_trip(t, s, big);
    }
    free(s);
    smelt_tokenizer_free(t);
}

static void decode_errors(void **state)
{
    (void)state;
    smelt_tokenizer *t = load_real();
    char *s;
    size_t len;
    int32_t bad[] = {495, 4096};
    smelt_err *err = smelt_tokenizer_decode(t, bad, 2, &s, &len);
    assert_non_null(err);
    assert_int_equal(smelt_err_kind_of(err), SMELT_E_INVALID);
    assert_string_equal(smelt_err_msg(err), TOKENIZER ": ids[1]: 4096 is not a token id (the vocabulary has ids 0 to 4095)");
    assert_null(s);
    smelt_err_free(err);
    int32_t neg[] = {-1};
    err = smelt_tokenizer_decode(t, neg, 1, &s, &len);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "ids[0]: -1 is not a token id"));
    smelt_err_free(err);
    check_ok(smelt_tokenizer_decode(t, NULL, 0, &s, &len));
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
    free(s);
    smelt_tokenizer_free(t);
}

/* ---- variants of the real file ---- */

static json_t *real_json(void)
{
    json_error_t je;
    json_t *j = json_load_file(TOKENIZER, 0, &je);
    if (!j) fail_msg("%s: %s", TOKENIZER, je.text);
    return j;
}

/* Loads j (dumped to text) as "tokenizer.json"; takes ownership of j. */
static smelt_err *load_json(json_t *j, smelt_tokenizer **t)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_non_null(text);
    smelt_err *err = smelt_tokenizer_load(text, strlen(text), "tokenizer.json", t);
    free(text);
    return err;
}

/* Merges as ["a", "b"] pairs (newer `tokenizers`) must give the same ids as "a b" strings. */
static void merges_pair_form(void **state)
{
    (void)state;
    json_t *j = real_json();
    json_t *merges = json_object_get(json_object_get(j, "model"), "merges");
    for (size_t i = 0; i < json_array_size(merges); i++) {
        const char *m = json_string_value(json_array_get(merges, i));
        const char *sp = strchr(m, ' ');
        json_t *pair = json_pack("[s#s]", m, (int)(sp - m), sp + 1);
        json_array_set_new(merges, i, pair);
    }
    smelt_tokenizer *t;
    check_ok(load_json(j, &t));
    static const int32_t want[] = {495, 760, 905, 283, 3763, 287, 2109};
    assert_ids(t, "The quick brown fox", want, 7);
    smelt_tokenizer_free(t);
}

/* ignore_merges: a piece that is itself a vocabulary token is taken whole. */
static void ignore_merges(void **state)
{
    (void)state;
    for (int on = 0; on < 2; on++) {
        json_t *j = real_json();
        json_t *model = json_object_get(j, "model");
        json_object_set_new(json_object_get(model, "vocab"), "Ġzzqq", json_integer(4096));
        json_object_set_new(model, "ignore_merges", json_boolean(on));
        smelt_tokenizer *t;
        check_ok(load_json(j, &t));
        int32_t *ids;
        size_t n;
        check_ok(smelt_tokenizer_encode(t, " zzqq", 5, &ids, &n));
        if (on) assert_true(n == 1 && ids[0] == 4096);
        else assert_true(n > 1);
        free(ids);
        smelt_tokenizer_free(t);
    }
}

/* Several added tokens: leftmost match first, longest on ties; content decodes verbatim. */
static void added_tokens_overlap(void **state)
{
    (void)state;
    json_t *j = real_json();
    json_t *added = json_object_get(j, "added_tokens");
    json_array_append_new(added, json_pack("{s:i,s:s,s:b}", "id", 4096, "content", "<|end", "special", 1));
    json_array_append_new(added, json_pack("{s:i,s:s,s:b}", "id", 4097, "content", "<|\xc3\xbc|>", "special", 1));
    smelt_tokenizer *t;
    check_ok(load_json(j, &t));
    assert_int_equal(smelt_tokenizer_vocab_size(t), 4098);
    static const int32_t w1[] = {4096, 0, 4097};
    assert_ids(t, "<|end<|endoftext|><|\xc3\xbc|>", w1, 3);
    round_trip(t, "a<|\xc3\xbc|>b<|end", 13);
    smelt_tokenizer_free(t);
}

typedef struct {
    const char *path;  /* where to put value, "a.b" or "a.b[3]" */
    const char *value; /* JSON text; NULL deletes the field */
    smelt_err_kind kind;
    const char *message;
} variant;

static const variant variants[] = {
    {"model.type", "\"WordPiece\"", SMELT_E_UNSUPPORTED, "tokenizer.json: 'model.type': 'WordPiece' is not supported (supported: 'BPE')"},
    {"model.byte_fallback", "true", SMELT_E_UNSUPPORTED, "tokenizer.json: 'model.byte_fallback': only false is supported"},
    {"model.dropout", "0.1", SMELT_E_UNSUPPORTED, "tokenizer.json: 'model.dropout': only null is supported"},
    {"model.continuing_subword_prefix", "\"##\"", SMELT_E_UNSUPPORTED, "'model.continuing_subword_prefix': only null is supported"},
    {"pre_tokenizer", "{\"type\": \"Metaspace\"}", SMELT_E_UNSUPPORTED,
     "tokenizer.json: 'pre_tokenizer': type 'Metaspace' is not supported (supported: 'ByteLevel')"},
    {"pre_tokenizer", "null", SMELT_E_UNSUPPORTED, "'pre_tokenizer': type 'null' is not supported"},
    {"pre_tokenizer.add_prefix_space", "true", SMELT_E_UNSUPPORTED, "'pre_tokenizer.add_prefix_space': only false is supported"},
    {"pre_tokenizer.add_prefix_space", NULL, SMELT_E_UNSUPPORTED, "'pre_tokenizer.add_prefix_space': only false is supported"},
    {"pre_tokenizer.use_regex", "false", SMELT_E_UNSUPPORTED, "'pre_tokenizer.use_regex': only true is supported"},
    {"normalizer", "{\"type\": \"NFC\"}", SMELT_E_UNSUPPORTED, "tokenizer.json: 'normalizer': type 'NFC' is not supported (supported: null)"},
    {"decoder", "{\"type\": \"WordPiece\"}", SMELT_E_UNSUPPORTED, "'decoder': type 'WordPiece' is not supported (supported: 'ByteLevel')"},
    {"model", "[]", SMELT_E_CORRUPT, "tokenizer.json: 'model': missing or not an object"},
    {"model.vocab", NULL, SMELT_E_CORRUPT, "tokenizer.json: 'model.vocab': missing or not an object"},
    {"model.merges", "{}", SMELT_E_CORRUPT, "tokenizer.json: 'model.merges': missing or not an array"},
    {"model.merges[12]", "\"☃ zq\"", SMELT_E_CORRUPT, "tokenizer.json: 'model.merges'[12]: token '☃' not in the vocabulary"},
    {"model.merges[12]", "[\"a\", \"zq\"]", SMELT_E_CORRUPT, "tokenizer.json: 'model.merges'[12]: token 'zq' not in the vocabulary"},
    {"model.merges[3]", "\"a Ġ\"", SMELT_E_CORRUPT, "tokenizer.json: 'model.merges'[3]: token 'aĠ' not in the vocabulary"},
    {"model.merges[3]", "\"a b c\"", SMELT_E_CORRUPT, "'model.merges'[3]: 'a b c' is not two tokens separated by one space"},
    {"model.merges[3]", "\"ab\"", SMELT_E_CORRUPT, "'model.merges'[3]: 'ab' is not two tokens separated by one space"},
    {"model.merges[3]", "7", SMELT_E_CORRUPT, "'model.merges'[3]: expected a string \"a b\" or a pair [\"a\", \"b\"]"},
    {"model.vocab.a", "99999", SMELT_E_CORRUPT, "'model.vocab': token 'a' has id 99999, outside 0..4096 (the file defines 4097 tokens)"},
    {"model.vocab.a", "-1", SMELT_E_CORRUPT, "'model.vocab': token 'a' has id -1, outside"},
    {"model.vocab.a", "\"65\"", SMELT_E_CORRUPT, "'model.vocab': token 'a': id is not an integer"},
    {"model.vocab.a", "66", SMELT_E_CORRUPT, "both have id 66"},
    {"model.vocab.Ā", NULL, SMELT_E_UNSUPPORTED, "'model.vocab': no token for byte 0x00 ('Ā'): a byte-level vocabulary needs all 256"},
    {"added_tokens[0].lstrip", "true", SMELT_E_UNSUPPORTED, "'added_tokens'[0]: 'lstrip' true is not supported (supported: false)"},
    {"added_tokens[0].content", "\"\"", SMELT_E_CORRUPT, "'added_tokens'[0]: needs a non-empty 'content' string and an integer 'id'"},
    {"added_tokens[0].id", "5", SMELT_E_CORRUPT, "'added_tokens': tokens"},
    {"added_tokens", "{}", SMELT_E_CORRUPT, "tokenizer.json: 'added_tokens': not an array"},
};

/* Sets (or deletes) the field at a dotted path with an optional [index] at the end. */
static void set_path(json_t *root, const char *path, const char *value)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *parent = root;
    char *key = buf, *dot;
    while ((dot = strchr(key, '.')) != NULL) {
        *dot = 0;
        char *br = strchr(key, '[');
        if (br) *br = 0;
        parent = json_object_get(parent, key);
        if (br) parent = json_array_get(parent, (size_t)atoi(br + 1));
        key = dot + 1;
    }
    json_t *v = NULL;
    if (value) {
        json_error_t je;
        v = json_loads(value, JSON_DECODE_ANY, &je);
        assert_non_null(v);
    }
    char *br = strchr(key, '[');
    if (br) {
        *br = 0;
        json_array_set_new(json_object_get(parent, key), (size_t)atoi(br + 1), v);
    } else if (v) {
        json_object_set_new(parent, key, v);
    } else {
        assert_int_equal(json_object_del(parent, key), 0);
    }
}

static void unsupported_and_corrupt(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        const variant *v = &variants[i];
        json_t *j = real_json();
        set_path(j, v->path, v->value);
        smelt_tokenizer *t;
        smelt_err *err = load_json(j, &t);
        if (!err) fail_msg("%s = %s: loaded without error", v->path, v->value ? v->value : "(deleted)");
        if (!strstr(smelt_err_msg(err), v->message) || strncmp(smelt_err_msg(err), "tokenizer.json: ", 16) != 0)
            fail_msg("%s = %s: message '%s' lacks '%s'", v->path, v->value ? v->value : "(deleted)", smelt_err_msg(err), v->message);
        if (smelt_err_kind_of(err) != v->kind) fail_msg("%s: kind %d, expected %d", v->path, smelt_err_kind_of(err), v->kind);
        assert_null(t);
        smelt_err_free(err);
    }
}

/* Malformed and truncated JSON are different errors; both name the source. */
static void bad_json(void **state)
{
    (void)state;
    char *text;
    size_t len;
    check_ok(smelt_read_file(TOKENIZER, 1u << 24, &text, &len));
    smelt_tokenizer *t;
    smelt_err *err = smelt_tokenizer_load(text, len / 2, "tokenizer.json", &t);
    assert_non_null(err);
    assert_int_equal(smelt_err_kind_of(err), SMELT_E_TRUNCATED);
    assert_non_null(strstr(smelt_err_msg(err), "tokenizer.json: truncated"));
    smelt_err_free(err);
    text[1] = ','; /* "{," */
    err = smelt_tokenizer_load(text, len, "tokenizer.json", &t);
    assert_non_null(err);
    assert_int_equal(smelt_err_kind_of(err), SMELT_E_CORRUPT);
    assert_non_null(strstr(smelt_err_msg(err), "tokenizer.json: invalid JSON at line"));
    smelt_err_free(err);
    err = smelt_tokenizer_load("[1, 2]", 6, "tokenizer.json", &t);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), "tokenizer.json: not a JSON object");
    smelt_err_free(err);
    free(text);
    err = smelt_tokenizer_load_file("tests/data/no-such-tokenizer.json", &t);
    assert_non_null(err);
    assert_int_equal(smelt_err_kind_of(err), SMELT_E_IO);
    smelt_err_free(err);
}

/* The committed bad files: each error starts with the path and names the field. */
static void bad_files(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        smelt_err_kind kind;
        const char *message;
    } cases[] = {
        {"tokenizer_bad_json.json", SMELT_E_CORRUPT, "invalid JSON at line"},
        {"tokenizer_truncated.json", SMELT_E_TRUNCATED, "truncated"},
        {"tokenizer_wordpiece.json", SMELT_E_UNSUPPORTED, "'model.type': 'WordPiece' is not supported (supported: 'BPE')"},
        {"tokenizer_metaspace.json", SMELT_E_UNSUPPORTED, "'pre_tokenizer': type 'Metaspace' is not supported (supported: 'ByteLevel')"},
        {"tokenizer_byte_fallback.json", SMELT_E_UNSUPPORTED, "'model.byte_fallback': only false is supported"},
        {"tokenizer_normalizer.json", SMELT_E_UNSUPPORTED, "'normalizer': type 'NFKC' is not supported (supported: null)"},
        {"tokenizer_merge_unknown.json", SMELT_E_CORRUPT, "'model.merges'[1]: token 'c' not in the vocabulary"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "tests/data/bad/%s", cases[i].file);
        smelt_tokenizer *t;
        smelt_err *err = smelt_tokenizer_load_file(path, &t);
        if (!err) fail_msg("%s: loaded without error", path);
        const char *msg = smelt_err_msg(err);
        if (strncmp(msg, path, strlen(path)) != 0 || !strstr(msg, cases[i].message))
            fail_msg("%s: message '%s' lacks '%s' or does not start with the path", path, msg, cases[i].message);
        if (smelt_err_kind_of(err) != cases[i].kind) fail_msg("%s: kind %d, expected %d", path, smelt_err_kind_of(err), cases[i].kind);
        smelt_err_free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(val_ids_exact),     cmocka_unit_test(reference_prompt),        cmocka_unit_test(added_tokens_split),
        cmocka_unit_test(round_trip_any_bytes), cmocka_unit_test(decode_errors),        cmocka_unit_test(merges_pair_form),
        cmocka_unit_test(ignore_merges),     cmocka_unit_test(added_tokens_overlap),    cmocka_unit_test(unsupported_and_corrupt),
        cmocka_unit_test(bad_json),          cmocka_unit_test(bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
