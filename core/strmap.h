/* A string -> int64 hash map (open addressing, linear probing).
 *
 * Used for tensor lookup by name and the tokenizer's vocabulary. Keys are copied; the map owns its
 * copies. Not thread-safe for writers; concurrent readers are fine.
 */
#ifndef SMELT_STRMAP_H
#define SMELT_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **keys;
    size_t *key_lens;
    int64_t *vals;
    size_t cap; /* power of two, 0 when empty */
    size_t len;
} smelt_strmap;

/* Keys are byte strings of length len (may contain NUL). Returns false on allocation failure. */
bool smelt_strmap_put(smelt_strmap *m, const char *key, size_t len, int64_t val);
/* Returns true and sets *val when the key is present. */
bool smelt_strmap_get(const smelt_strmap *m, const char *key, size_t len, int64_t *val);
void smelt_strmap_free(smelt_strmap *m);

#endif
