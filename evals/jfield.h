/* Typed reads from the human-written JSON files of the eval stage (suites, policies, workload and
 * hardware profiles) with errors that name the file, the key and what was expected:
 *   "evals/policies/x.json: 'checks.max_kl': expected a number >= 0, found string".
 * Keys are given as a parent path ("checks", "domains[1]") plus a key so messages show where a
 * value sits. Unknown keys are rejected (jf_keys) so a typo never silently turns a check off. */
#ifndef SMELT_EVAL_JFIELD_H
#define SMELT_EVAL_JFIELD_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"

/* Parses path as JSON; the root must be an object. Caller decrefs *out. */
smelt_err *jf_load(const char *path, json_t **out);

/* The JSON type name of v ("string", "number", ... "nothing" for NULL), for messages. */
const char *jf_type_name(const json_t *v);

/* Each getter: when the key is absent, required ones fail and optional ones keep *out unchanged. */
smelt_err *jf_number(const char *file, const char *parent, const json_t *obj, const char *key, bool required, double min, double max, double *out);
smelt_err *jf_int(const char *file, const char *parent, const json_t *obj, const char *key, bool required, long min, long max, long *out);
smelt_err *jf_string(const char *file, const char *parent, const json_t *obj, const char *key, bool required, const char **out);
smelt_err *jf_bool(const char *file, const char *parent, const json_t *obj, const char *key, bool required, bool *out);
/* An object or array member (borrowed reference; NULL when optional and absent). */
smelt_err *jf_object(const char *file, const char *parent, const json_t *obj, const char *key, bool required, json_t **out);
smelt_err *jf_array(const char *file, const char *parent, const json_t *obj, const char *key, bool required, json_t **out);
/* Fails on any key of obj not in the NULL-terminated list `allowed`. */
smelt_err *jf_keys(const char *file, const char *parent, const json_t *obj, const char *const *allowed);

/* "parent.key" (or "key" when parent is empty) into buf. */
const char *jf_path(char *buf, size_t n, const char *parent, const char *key);

#endif
