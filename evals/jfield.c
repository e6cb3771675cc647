/* Typed JSON field reads with file/key/expectation errors (see jfield.h). */
#include "evals/jfield.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *jf_path(char *buf, size_t n, const char *parent, const char *key)
{
    if (parent && parent[0]) snprintf(buf, n, "%s.%s", parent, key);
    else snprintf(buf, n, "%s", key);
    return buf;
}

const char *jf_type_name(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return v ? "null" : "nothing";
    }
}

smelt_err *jf_load(const char *path, json_t **out)
{
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*out) {
        if (je.line < 1) return SMELT_ERR(SMELT_E_IO, "%s: %s", path, je.text);
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
    }
    if (!json_is_object(*out)) {
        smelt_err *err = SMELT_ERR(SMELT_E_CORRUPT, "%s: expected a JSON object at the top level, found %s", path, jf_type_name(*out));
        json_decref(*out);
        *out = NULL;
        return err;
    }
    return NULL;
}

static smelt_err *missing(const char *file, const char *parent, const char *key, const char *what)
{
    char p[256];
    return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': missing, expected %s", file, jf_path(p, sizeof p, parent, key), what);
}

smelt_err *jf_number(const char *file, const char *parent, const json_t *obj, const char *key, bool required, double min, double max, double *out)
{
    char p[256];
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? missing(file, parent, key, "a number") : NULL;
    double d = json_number_value(v);
    if (!json_is_number(v) || !isfinite(d) || d < min || d > max) {
        char found[64];
        if (json_is_number(v)) snprintf(found, sizeof found, "%g", d);
        else snprintf(found, sizeof found, "%s", jf_type_name(v));
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected a number from %g to %g, found %s", file, jf_path(p, sizeof p, parent, key), min, max, found);
    }
    *out = d;
    return NULL;
}

smelt_err *jf_int(const char *file, const char *parent, const json_t *obj, const char *key, bool required, long min, long max, long *out)
{
    char p[256];
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? missing(file, parent, key, "an integer") : NULL;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char found[64];
        if (json_is_number(v)) snprintf(found, sizeof found, "%g", json_number_value(v));
        else snprintf(found, sizeof found, "%s", jf_type_name(v));
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected an integer from %ld to %ld, found %s", file, jf_path(p, sizeof p, parent, key), min, max, found);
    }
    *out = (long)json_integer_value(v);
    return NULL;
}

smelt_err *jf_string(const char *file, const char *parent, const json_t *obj, const char *key, bool required, const char **out)
{
    char p[256];
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? missing(file, parent, key, "a string") : NULL;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected a non-empty string, found %s", file, jf_path(p, sizeof p, parent, key),
                         json_is_string(v) ? "an empty string" : jf_type_name(v));
    *out = json_string_value(v);
    return NULL;
}

smelt_err *jf_bool(const char *file, const char *parent, const json_t *obj, const char *key, bool required, bool *out)
{
    char p[256];
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? missing(file, parent, key, "true or false") : NULL;
    if (!json_is_boolean(v))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected true or false, found %s", file, jf_path(p, sizeof p, parent, key), jf_type_name(v));
    *out = json_is_true(v);
    return NULL;
}

smelt_err *jf_object(const char *file, const char *parent, const json_t *obj, const char *key, bool required, json_t **out)
{
    char p[256];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) return required ? missing(file, parent, key, "an object") : NULL;
    if (!json_is_object(v))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected an object, found %s", file, jf_path(p, sizeof p, parent, key), jf_type_name(v));
    *out = v;
    return NULL;
}

smelt_err *jf_array(const char *file, const char *parent, const json_t *obj, const char *key, bool required, json_t **out)
{
    char p[256];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) return required ? missing(file, parent, key, "an array") : NULL;
    if (!json_is_array(v))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': expected an array, found %s", file, jf_path(p, sizeof p, parent, key), jf_type_name(v));
    *out = v;
    return NULL;
}

smelt_err *jf_keys(const char *file, const char *parent, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++) ok = strcmp(allowed[i], key) == 0;
        if (ok) continue;
        char list[512] = "", p[256];
        for (int i = 0; allowed[i]; i++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s'%s'", i ? ", " : "", allowed[i]);
        }
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': unknown key, expected one of %s", file, jf_path(p, sizeof p, parent, key), list);
    }
    return NULL;
}
