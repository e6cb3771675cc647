/* String hash map: FNV-1a hashing, linear probing, grows at 50% load. */
#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static size_t find_slot(const smelt_strmap *m, const char *key, size_t len)
{
    size_t i = hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[i] && !(m->key_lens[i] == len && memcmp(m->keys[i], key, len) == 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static bool grow(smelt_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    smelt_strmap n = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(size_t)), calloc(cap, sizeof(int64_t)), cap, m->len};
    if (!n.keys || !n.key_lens || !n.vals) {
        free(n.keys);
        free(n.key_lens);
        free(n.vals);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = find_slot(&n, m->keys[i], m->key_lens[i]);
        n.keys[j] = m->keys[i];
        n.key_lens[j] = m->key_lens[i];
        n.vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->key_lens);
    free(m->vals);
    *m = n;
    return true;
}

bool smelt_strmap_put(smelt_strmap *m, const char *key, size_t len, int64_t val)
{
    if ((m->len + 1) * 2 > m->cap && !grow(m)) return false;
    size_t i = find_slot(m, key, len);
    if (!m->keys[i]) {
        char *k = malloc(len + 1);
        if (!k) return false;
        memcpy(k, key, len);
        k[len] = 0;
        m->keys[i] = k;
        m->key_lens[i] = len;
        m->len++;
    }
    m->vals[i] = val;
    return true;
}

bool smelt_strmap_get(const smelt_strmap *m, const char *key, size_t len, int64_t *val)
{
    if (!m->cap) return false;
    size_t i = find_slot(m, key, len);
    if (!m->keys[i]) return false;
    if (val) *val = m->vals[i];
    return true;
}

void smelt_strmap_free(smelt_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->key_lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
