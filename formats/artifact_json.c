/* JSON helpers for the artifact's manifest.json and graph.json codecs: typed getters whose errors
 * name the file, the locator and the key; a builder with a sticky error so the writers read as a
 * plain list of fields; and base64 for byte strings (ONNX string attributes, opaque subgraphs)
 * that are not valid UTF-8 and so cannot be JSON strings. */
#define _POSIX_C_SOURCE 200809L
#include "formats/artifact_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

smelt_err *art_get(const char *loc, const json_t *o, const char *key, json_t **out)
{
    *out = json_object_get(o, key);
    if (!*out) return SMELT_ERR(SMELT_E_CORRUPT, "%s: missing '%s'", loc, key);
    return NULL;
}

static smelt_err *wrong_type(const char *loc, const char *key, const json_t *v, const char *want)
{
    return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s' is %s, expected %s", loc, key, type_name(v), want);
}

smelt_err *art_get_str(const char *loc, const json_t *o, const char *key, const char **out)
{
    json_t *v;
    SMELT_TRY(art_get(loc, o, key, &v));
    if (!json_is_string(v)) return wrong_type(loc, key, v, "a string");
    *out = json_string_value(v);
    return NULL;
}

smelt_err *art_get_str_or_null(const char *loc, const json_t *o, const char *key, const char **out)
{
    json_t *v;
    SMELT_TRY(art_get(loc, o, key, &v));
    *out = NULL;
    if (json_is_null(v)) return NULL;
    if (!json_is_string(v)) return wrong_type(loc, key, v, "a string or null");
    *out = json_string_value(v);
    return NULL;
}

smelt_err *art_get_int(const char *loc, const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v;
    SMELT_TRY(art_get(loc, o, key, &v));
    if (!json_is_integer(v)) return wrong_type(loc, key, v, "an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s' is %lld, expected %lld to %lld", loc, key, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return NULL;
}

smelt_err *art_get_u64(const char *loc, const json_t *o, const char *key, uint64_t *out)
{
    int64_t x;
    SMELT_TRY(art_get_int(loc, o, key, 0, INT64_MAX, &x));
    *out = (uint64_t)x;
    return NULL;
}

smelt_err *art_get_bool(const char *loc, const json_t *o, const char *key, bool *out)
{
    json_t *v;
    SMELT_TRY(art_get(loc, o, key, &v));
    if (!json_is_boolean(v)) return wrong_type(loc, key, v, "true or false");
    *out = json_is_true(v);
    return NULL;
}

smelt_err *art_get_array(const char *loc, const json_t *o, const char *key, json_t **out)
{
    SMELT_TRY(art_get(loc, o, key, out));
    if (!json_is_array(*out)) return wrong_type(loc, key, *out, "an array");
    return NULL;
}

smelt_err *art_get_object(const char *loc, const json_t *o, const char *key, json_t **out)
{
    SMELT_TRY(art_get(loc, o, key, out));
    if (!json_is_object(*out)) return wrong_type(loc, key, *out, "an object");
    return NULL;
}

smelt_err *art_get_dtype(const char *loc, const json_t *o, const char *key, bool allow_null, smelt_dtype *out)
{
    const char *s;
    SMELT_TRY(allow_null ? art_get_str_or_null(loc, o, key, &s) : art_get_str(loc, o, key, &s));
    *out = SMELT_DT_INVALID;
    if (!s) return NULL;
    *out = smelt_dtype_from_name(s);
    if (*out == SMELT_DT_INVALID)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: unknown dtype '%s' in '%s', expected one of f32, f16, bf16, f64, i8, u8, i16, u16, "
                         "i32, u32, i64, u64, bool, i4, u4", loc, s, key);
    return NULL;
}

smelt_err *art_strdup(const char *src, char **out)
{
    *out = NULL;
    if (!src) return NULL;
    *out = strdup(src);
    return *out ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
}

static void jb_oom(art_jb *b)
{
    if (!b->err) b->err = SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory building JSON", b->path);
}

void art_jb_set(art_jb *b, json_t *o, const char *key, json_t *v)
{
    if (b->err || !o || !v) {
        json_decref(v);
        jb_oom(b);
        return;
    }
    /* json_object_set_new takes v even when it fails */
    if (json_object_set_new(o, key, v) != 0) jb_oom(b);
}

void art_jb_append(art_jb *b, json_t *a, json_t *v)
{
    if (b->err || !a || !v) {
        json_decref(v);
        jb_oom(b);
        return;
    }
    if (json_array_append_new(a, v) != 0) jb_oom(b);
}

json_t *art_jb_str(art_jb *b, const char *what, const char *s)
{
    if (b->err) return NULL;
    json_t *v = json_string(s ? s : "");
    /* jansson refuses strings that are not UTF-8; say which one rather than "out of memory". */
    if (!v) b->err = SMELT_ERR(SMELT_E_INVALID, "%s: %s is not valid UTF-8", b->path, what);
    return v;
}

json_t *art_jb_int(art_jb *b, int64_t v)
{
    if (b->err) return NULL;
    return json_integer((json_int_t)v);
}

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *art_base64_encode(const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    size_t n = (len + 2) / 3 * 4;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        s[k++] = b64_chars[(v >> 18) & 63];
        s[k++] = b64_chars[(v >> 12) & 63];
        s[k++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
        s[k++] = i + 2 < len ? b64_chars[v & 63] : '=';
    }
    s[k] = 0;
    return s;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_chars, c) : NULL;
    return p ? (int)(p - b64_chars) : -1;
}

bool art_base64_decode(const char *s, size_t len, char **out, size_t *out_len, bool *oom)
{
    *out = NULL;
    *out_len = 0;
    *oom = false;
    if (len % 4 != 0) return false;
    size_t pad = 0; /* '=' may only end the text, once or twice */
    if (len >= 4 && s[len - 1] == '=') pad = s[len - 2] == '=' ? 2 : 1;
    size_t n = len / 4 * 3 - pad;
    char *buf = malloc(n + 1);
    if (!buf) {
        *oom = true;
        return false;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        size_t real = last ? 4 - pad : 4; /* characters that carry bits in this quantum */
        uint32_t x = 0;
        for (size_t j = 0; j < 4; j++) {
            int v = j < real ? b64_value(s[i + j]) : 0;
            if (v < 0) {
                free(buf);
                return false;
            }
            x = x << 6 | (uint32_t)v;
        }
        buf[k++] = (char)(x >> 16);
        if (real > 2) buf[k++] = (char)(x >> 8);
        if (real > 3) buf[k++] = (char)x;
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return true;
}
