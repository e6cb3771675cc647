/* Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (GPT-2, Llama-teacher style).
 *
 * Loading checks that the file describes something this code implements exactly (model BPE, no
 * normalizer, ByteLevel pre-tokenizer and decoder) and refuses anything else with the field and the
 * supported values, because a tokenizer that silently differs from the one a model was trained with
 * gives plausible-looking but wrong ids. Encoding follows the `tokenizers` library: added tokens are
 * cut out first, the rest is split by the GPT-2 regex (PCRE2), each piece's bytes go through GPT-2's
 * bytes->unicode table and are merged by rank. Bytes the regex cannot match (invalid UTF-8) become
 * pieces of their own, so every byte string round-trips. The post-processor, truncation and padding
 * sections are ignored: smelt never adds special tokens, and callers cut ids themselves.
 */
#define _GNU_SOURCE /* memmem */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "formats/tokenizer.h"

#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "core/strmap.h"

/* The pre-tokenizer regex of GPT-2 (ByteLevel with use_regex true). */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* tokenizer.json files of real models are at most tens of MB; refuse absurd sizes before reading. */
#define TOKENIZER_MAX_FILE (512u * 1024 * 1024)
/* Pieces longer than this are not cached: they rarely repeat and would bloat the cache. */
#define CACHE_MAX_PIECE 256
#define NO_TOKEN UINT32_MAX

typedef struct {
    char *content;
    size_t len;
    int32_t id;
} added_token;

struct smelt_tokenizer {
    char *source;          /* file name for messages */
    smelt_strmap vocab;    /* byte-level token string -> id */
    smelt_strmap merges;   /* (left id, right id) as 8 bytes -> rank << 32 | merged id */
    int32_t byte_id[256];  /* the token of each single byte */
    uint16_t byte_cp[256]; /* GPT-2's bytes_to_unicode: byte -> code point */
    int16_t cp_byte[324];  /* its inverse; -1 for code points that are not in the table */
    bool ignore_merges;    /* a piece that is itself a token is not merged */
    int32_t n_ids;         /* one past the largest id */
    char *dec;             /* decoded bytes of every token, back to back */
    size_t *dec_off;       /* [n_ids]: offset into dec */
    uint32_t *dec_len;     /* [n_ids]: byte count; NO_TOKEN for ids without a token */
    added_token *added;
    int n_added;
    pcre2_code *re;
};

/* ---- loading ---- */

/* GPT-2 maps printable latin-1 bytes to themselves and the others to U+0100 upwards, so every
 * byte is a visible character in vocab and merges strings. */
static void build_byte_table(smelt_tokenizer *t)
{
    int extra = 0;
    memset(t->cp_byte, -1, sizeof t->cp_byte);
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        t->byte_cp[b] = (uint16_t)(keep ? b : 256 + extra++);
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    }
}

/* Appends the UTF-8 of byte b's code point to out (1 or 2 bytes); returns the count. */
static int byte_utf8(const smelt_tokenizer *t, uint8_t b, char *out)
{
    unsigned cp = t->byte_cp[b];
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

/* ByteLevel decoding of one token string into out (at most len bytes). Like `tokenizers`, a token
 * with any character outside the table (or not valid UTF-8) decodes to its own bytes. */
static size_t decode_token(const smelt_tokenizer *t, const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint8_t c = (uint8_t)s[i];
        unsigned cp;
        if (c < 0x80) cp = c, i += 1;
        else if ((c & 0xe0) == 0xc0 && i + 1 < len && ((uint8_t)s[i + 1] & 0xc0) == 0x80)
            cp = ((c & 0x1fu) << 6) | ((uint8_t)s[i + 1] & 0x3fu), i += 2;
        else cp = 0xffff;
        if (cp >= sizeof t->cp_byte / sizeof t->cp_byte[0] || t->cp_byte[cp] < 0) {
            memcpy(out, s, len);
            return len;
        }
        out[n++] = (char)t->cp_byte[cp];
    }
    return n;
}

static const char *type_of(const json_t *j)
{
    const char *s = json_string_value(json_object_get(j, "type"));
    return s ? s : "(none)";
}

/* Refuses a configuration this file does not implement. The model comes first: for a file from
 * another family (WordPiece, SentencePiece-style BPE) that is the most telling difference. */
static smelt_err *check_pipeline(const char *src, const json_t *root)
{
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model': missing or not an object", src);
    const json_t *type = json_object_get(model, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'model.type': '%s' is not supported (supported: 'BPE')", src,
                         json_is_string(type) ? json_string_value(type) : "(not a string)");
    const json_t *bf = json_object_get(model, "byte_fallback");
    if (bf && !json_is_false(bf))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'model.byte_fallback': only false is supported (byte-level BPE needs no fallback)", src);
    const json_t *drop = json_object_get(model, "dropout");
    if (drop && !json_is_null(drop) && json_number_value(drop) != 0.0)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'model.dropout': only null is supported (encoding is deterministic)", src);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const json_t *a = json_object_get(model, affixes[i]);
        if (a && !json_is_null(a) && !(json_is_string(a) && json_string_length(a) == 0))
            return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'model.%s': only null is supported", src, affixes[i]);
    }
    const json_t *im = json_object_get(model, "ignore_merges");
    if (im && !json_is_boolean(im)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.ignore_merges': not a boolean", src);
    const json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'normalizer': type '%s' is not supported (supported: null)", src, type_of(norm));
    const json_t *pre = json_object_get(root, "pre_tokenizer");
    if (!json_is_object(pre) || strcmp(type_of(pre), "ByteLevel") != 0)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'pre_tokenizer': type '%s' is not supported (supported: 'ByteLevel')", src,
                         json_is_object(pre) ? type_of(pre) : "null");
    /* `tokenizers` defaults both options to true when they are absent. A prefix space would make
     * decode(encode(x)) differ from x; without the regex the pieces would differ from GPT-2's. */
    if (!json_is_false(json_object_get(pre, "add_prefix_space")))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'pre_tokenizer.add_prefix_space': only false is supported", src);
    const json_t *rx = json_object_get(pre, "use_regex");
    if (rx && !json_is_true(rx)) return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'pre_tokenizer.use_regex': only true is supported", src);
    const json_t *dec = json_object_get(root, "decoder");
    if (!json_is_object(dec) || strcmp(type_of(dec), "ByteLevel") != 0)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'decoder': type '%s' is not supported (supported: 'ByteLevel')", src,
                         json_is_object(dec) ? type_of(dec) : "null");
    return NULL;
}

/* The token string that owns an id while loading (pointing into the JSON). */
typedef struct {
    const char *s;
    size_t n;
} owner_str;

/* Records id -> token string (decoded later); a second token for the same id is an error. */
static smelt_err *claim_id(smelt_tokenizer *t, owner_str *owner, const char *field, const char *tok, size_t len, int64_t id)
{
    if (id < 0 || id >= t->n_ids)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': token '%s' has id %lld, outside 0..%d (the file defines %d tokens)",
                         t->source, field, tok, (long long)id, t->n_ids - 1, t->n_ids);
    if (owner[id].s)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s': tokens '%s' and '%s' both have id %lld", t->source, field, owner[id].s, tok, (long long)id);
    owner[id] = (owner_str){tok, len};
    return NULL;
}

static smelt_err *load_vocab(smelt_tokenizer *t, const json_t *vocab, const json_t *added, owner_str *owner)
{
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)vocab, key, klen, v) {
        if (!json_is_integer(v)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.vocab': token '%s': id is not an integer", t->source, key);
        SMELT_TRY(claim_id(t, owner, "model.vocab", key, klen, json_integer_value(v)));
        if (!smelt_strmap_put(&t->vocab, key, klen, json_integer_value(v))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        const json_t *c = json_object_get(a, "content"), *id = json_object_get(a, "id");
        if (!json_is_string(c) || json_string_length(c) == 0 || !json_is_integer(id))
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'added_tokens'[%zu]: needs a non-empty 'content' string and an integer 'id'", t->source, i);
        static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
        for (int f = 0; f < 3; f++)
            if (json_is_true(json_object_get(a, flags[f])))
                return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'added_tokens'[%zu]: '%s' true is not supported (supported: false)", t->source, i, flags[f]);
        int64_t n = json_integer_value(id);
        /* An added token may repeat a vocabulary entry with the same id (GPT-2's <|endoftext|>). */
        int64_t vid;
        if (!(smelt_strmap_get(&t->vocab, json_string_value(c), json_string_length(c), &vid) && vid == n))
            SMELT_TRY(claim_id(t, owner, "added_tokens", json_string_value(c), json_string_length(c), n));
        added_token *at = &t->added[t->n_added++];
        at->len = json_string_length(c);
        at->id = (int32_t)n;
        if (!(at->content = malloc(at->len + 1))) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        memcpy(at->content, json_string_value(c), at->len + 1);
    }
    return NULL;
}

/* Every byte must be a token of its own, or some inputs could not be encoded at all. */
static smelt_err *find_byte_tokens(smelt_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char u[2];
        int n = byte_utf8(t, (uint8_t)b, u);
        int64_t id;
        if (!smelt_strmap_get(&t->vocab, u, (size_t)n, &id))
            return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'model.vocab': no token for byte 0x%02x ('%.*s'): a byte-level vocabulary needs all 256",
                             t->source, b, n, u);
        t->byte_id[b] = (int32_t)id;
    }
    return NULL;
}

/* Looks up one side of a merge; the error names the merge and the token. */
static smelt_err *merge_token(const smelt_tokenizer *t, size_t rank, const char *s, size_t n, int64_t *id)
{
    if (smelt_strmap_get(&t->vocab, s, n, id)) return NULL;
    return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.merges'[%zu]: token '%.*s' not in the vocabulary", t->source, rank, (int)n, s);
}

/* Merges come as "a b" strings (one space, as `tokenizers` splits them) or as ["a", "b"] pairs. */
static smelt_err *load_merges(smelt_tokenizer *t, const json_t *merges)
{
    size_t cap = 0;
    char *both = NULL;
    smelt_err *err = NULL;
    for (size_t r = 0; r < json_array_size(merges) && !err; r++) {
        const json_t *m = json_array_get(merges, r);
        const char *a, *b;
        size_t na, nb;
        if (json_is_string(m)) {
            a = json_string_value(m);
            const char *sp = memchr(a, ' ', json_string_length(m));
            if (!sp || memchr(sp + 1, ' ', json_string_length(m) - (size_t)(sp + 1 - a))) {
                err = SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.merges'[%zu]: '%s' is not two tokens separated by one space", t->source, r, a);
                break;
            }
            na = (size_t)(sp - a), b = sp + 1, nb = json_string_length(m) - na - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0)), na = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1)), nb = json_string_length(json_array_get(m, 1));
        } else {
            err = SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.merges'[%zu]: expected a string \"a b\" or a pair [\"a\", \"b\"]", t->source, r);
            break;
        }
        if (na + nb > cap) {
            char *p = realloc(both, cap = 2 * (na + nb));
            if (!p) {
                err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
                break;
            }
            both = p;
        }
        memcpy(both, a, na);
        memcpy(both + na, b, nb);
        int64_t ia, ib, im;
        if ((err = merge_token(t, r, a, na, &ia)) || (err = merge_token(t, r, b, nb, &ib)) || (err = merge_token(t, r, both, na + nb, &im))) break;
        int32_t key[2] = {(int32_t)ia, (int32_t)ib};
        /* A repeated pair keeps its last rank, as `tokenizers` does when it builds its map. */
        if (!smelt_strmap_put(&t->merges, (const char *)key, sizeof key, (int64_t)r << 32 | im)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    free(both);
    return err;
}

/* Precomputes every id's decoded bytes so decoding is a table lookup. */
static smelt_err *build_decode_table(smelt_tokenizer *t, const owner_str *owner, size_t n_ids)
{
    /* Each id gets as many bytes as its token string has: decoding never makes a token longer, and
     * an added token's content (copied verbatim below) is exactly that string. */
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) total += owner[i].n;
    t->dec = malloc(total + 1);
    t->dec_off = calloc(n_ids, sizeof *t->dec_off);
    t->dec_len = calloc(n_ids, sizeof *t->dec_len);
    if (!t->dec || !t->dec_off || !t->dec_len) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    size_t off = 0;
    for (size_t i = 0; i < n_ids; i++) {
        t->dec_off[i] = off;
        t->dec_len[i] = owner[i].s ? (uint32_t)decode_token(t, owner[i].s, owner[i].n, t->dec + off) : NO_TOKEN;
        off += owner[i].n;
    }
    /* Added tokens decode to their content verbatim, so text that contained them round-trips. */
    for (int i = 0; i < t->n_added; i++) {
        const added_token *a = &t->added[i];
        memcpy(t->dec + t->dec_off[a->id], a->content, a->len);
        t->dec_len[a->id] = (uint32_t)a->len;
    }
    return NULL;
}

static smelt_err *compile_regex(smelt_tokenizer *t)
{
    int code;
    PCRE2_SIZE at;
    t->re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    if (!t->re) {
        char msg[256];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
        return SMELT_ERR(SMELT_E_GENERIC, "pcre2: cannot compile the GPT-2 pattern at %zu: %s", (size_t)at, msg);
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* optional: matching falls back to the interpreter */
    return NULL;
}

static smelt_err *load_root(smelt_tokenizer *t, const json_t *root)
{
    if (!json_is_object(root)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: not a JSON object", t->source);
    SMELT_TRY(check_pipeline(t->source, root));
    const json_t *model = json_object_get(root, "model");
    const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    const json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.vocab': missing or not an object", t->source);
    if (!json_is_array(merges)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.merges': missing or not an array", t->source);
    if (added && !json_is_array(added) && !json_is_null(added))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'added_tokens': not an array", t->source);
    /* Ids must be dense enough that the id table is bounded by the file's own size. */
    size_t n = json_object_size(vocab) + json_array_size(added);
    if (json_array_size(merges) > INT32_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.merges': too many merges", t->source);
    if (n == 0 || n > INT32_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: 'model.vocab': %zu tokens (expected 1 to %d)", t->source, n, INT32_MAX);
    t->n_ids = (int32_t)n;
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    t->added = calloc(json_array_size(added) + 1, sizeof *t->added);
    owner_str *owner = calloc(n, sizeof *owner);
    if (!t->added || !owner) {
        free(owner);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    smelt_err *err = load_vocab(t, vocab, added, owner);
    if (!err) err = load_merges(t, merges);
    if (!err) err = find_byte_tokens(t);
    if (!err) err = build_decode_table(t, owner, n);
    free(owner);
    /* Trim the id range to the largest id used, which is what callers see as the vocabulary size. */
    while (!err && t->n_ids > 0 && t->dec_len[t->n_ids - 1] == NO_TOKEN) t->n_ids--;
    return err ? err : compile_regex(t);
}

smelt_err *smelt_tokenizer_load(const char *json_text, size_t len, const char *source, smelt_tokenizer **out)
{
    *out = NULL;
    json_error_t je;
    /* NUL is legal in JSON strings ("\u0000"); duplicate keys would make the vocabulary ambiguous. */
    json_t *root = json_loadb(json_text, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_premature_end_of_input)
            return SMELT_ERR(SMELT_E_TRUNCATED, "%s: truncated: the JSON ends at byte %zu before it is complete", source, len);
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: invalid JSON at line %d, column %d: %s", source, je.line, je.column, je.text);
    }
    smelt_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->source = strdup(source))) {
        json_decref(root);
        free(t);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    build_byte_table(t);
    smelt_err *err = load_root(t, root);
    json_decref(root);
    if (err) {
        smelt_tokenizer_free(t);
        return err;
    }
    *out = t;
    return NULL;
}

smelt_err *smelt_tokenizer_load_file(const char *path, smelt_tokenizer **out)
{
    *out = NULL;
    char *text;
    size_t len;
    SMELT_TRY(smelt_read_file(path, TOKENIZER_MAX_FILE, &text, &len));
    smelt_err *err = smelt_tokenizer_load(text, len, path, out);
    free(text);
    return err;
}

void smelt_tokenizer_free(smelt_tokenizer *t)
{
    if (!t) return;
    smelt_strmap_free(&t->vocab);
    smelt_strmap_free(&t->merges);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->dec);
    free(t->dec_off);
    free(t->dec_len);
    pcre2_code_free(t->re);
    free(t->source);
    free(t);
}

int smelt_tokenizer_vocab_size(const smelt_tokenizer *t) { return t->n_ids; }

int32_t smelt_tokenizer_token_id(const smelt_tokenizer *t, const char *token)
{
    size_t n = strlen(token);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->added[i].content, token, n) == 0) return t->added[i].id;
    int64_t id;
    return smelt_strmap_get(&t->vocab, token, n, &id) ? (int32_t)id : -1;
}

/* ---- encoding ---- */

/* A growable int32 array. */
typedef struct {
    int32_t *v;
    size_t n, cap;
} ids_vec;

static bool ids_push(ids_vec *a, int32_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 256;
        int32_t *p = realloc(a->v, cap * sizeof *p);
        if (!p) return false;
        a->v = p, a->cap = cap;
    }
    a->v[a->n++] = x;
    return true;
}

/* Per-call scratch: match data, the piece -> ids cache and the merge workspace. Kept out of the
 * tokenizer so one loaded tokenizer can encode on several threads at once. */
typedef struct {
    const smelt_tokenizer *t;
    pcre2_match_data *md;
    smelt_strmap cache; /* piece bytes -> offset << 32 | count into cached */
    ids_vec cached;
    int32_t *sym;    /* [n] token of each symbol of the piece being merged */
    int32_t *next;   /* [n] next live symbol, -1 at the end */
    int32_t *prev;   /* [n] previous live symbol, -1 at the start */
    uint64_t *heap;  /* candidate merges: rank << 32 | position of the left symbol, min first */
    size_t cap;
    char *word;      /* [2n] the piece as a byte-level string, for ignore_merges */
} encoder;

static void heap_push(uint64_t *h, size_t *n, uint64_t x)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > x) h[i] = h[(i - 1) / 2], i = (i - 1) / 2;
    h[i] = x;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c], i = c;
    }
    h[i] = x;
    return top;
}

/* The rank and result of merging tokens a and b, or false when no merge exists. */
static bool find_merge(const smelt_tokenizer *t, int32_t a, int32_t b, uint32_t *rank, int32_t *merged)
{
    int32_t key[2] = {a, b};
    int64_t v;
    if (!smelt_strmap_get(&t->merges, (const char *)key, sizeof key, &v)) return false;
    *rank = (uint32_t)((uint64_t)v >> 32);
    *merged = (int32_t)(v & 0xffffffff);
    return true;
}

static void push_pair(encoder *e, size_t *hn, int32_t pos)
{
    uint32_t rank;
    int32_t merged;
    if (pos >= 0 && e->next[pos] >= 0 && find_merge(e->t, e->sym[pos], e->sym[e->next[pos]], &rank, &merged))
        heap_push(e->heap, hn, (uint64_t)rank << 32 | (uint32_t)pos);
}

/* BPE on one piece: merges the lowest-ranked adjacent pair (leftmost on ties) until none is left,
 * with a heap so a long piece costs O(n log n), not O(n^2). Appends the ids to out. */
static bool bpe(encoder *e, const uint8_t *s, size_t n, ids_vec *out)
{
    const smelt_tokenizer *t = e->t;
    if (n > e->cap) {
        size_t cap = n * 2;
        free(e->sym), free(e->next), free(e->prev), free(e->heap), free(e->word);
        e->sym = malloc(cap * sizeof *e->sym), e->next = malloc(cap * sizeof *e->next), e->prev = malloc(cap * sizeof *e->prev);
        /* The heap holds at most n - 1 initial pairs plus one net entry per merge: under 2n. */
        e->heap = malloc(2 * cap * sizeof *e->heap), e->word = malloc(2 * cap);
        e->cap = cap;
        if (!e->sym || !e->next || !e->prev || !e->heap || !e->word) {
            e->cap = 0;
            return false;
        }
    }
    if (t->ignore_merges) {
        size_t wn = 0;
        for (size_t i = 0; i < n; i++) wn += (size_t)byte_utf8(t, s[i], e->word + wn);
        int64_t id;
        if (smelt_strmap_get(&t->vocab, e->word, wn, &id)) return ids_push(out, (int32_t)id);
    }
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        e->sym[i] = t->byte_id[s[i]];
        e->prev[i] = (int32_t)i - 1;
        e->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) push_pair(e, &hn, (int32_t)i);
    while (hn > 0) {
        uint64_t top = heap_pop(e->heap, &hn);
        int32_t pos = (int32_t)(top & 0xffffffff), r;
        uint32_t rank;
        int32_t merged;
        /* Stale entries: the left symbol was absorbed (sym -1) or its pair changed since the push. */
        if (e->sym[pos] < 0 || (r = e->next[pos]) < 0 || !find_merge(t, e->sym[pos], e->sym[r], &rank, &merged) ||
            rank != (uint32_t)(top >> 32))
            continue;
        e->sym[pos] = merged;
        e->sym[r] = -1;
        e->next[pos] = e->next[r];
        if (e->next[r] >= 0) e->prev[e->next[r]] = pos;
        push_pair(e, &hn, e->prev[pos]);
        push_pair(e, &hn, pos);
    }
    for (int32_t i = 0; i >= 0; i = e->next[i])
        if (!ids_push(out, e->sym[i])) return false;
    return true;
}

/* Encodes one pre-tokenized piece, through the cache when it is short. */
static bool encode_piece(encoder *e, const char *s, size_t n, ids_vec *out)
{
    int64_t hit;
    if (n <= CACHE_MAX_PIECE && smelt_strmap_get(&e->cache, s, n, &hit)) {
        size_t off = (size_t)((uint64_t)hit >> 32), cnt = (size_t)(hit & 0xffffffff);
        for (size_t i = 0; i < cnt; i++)
            if (!ids_push(out, e->cached.v[off + i])) return false;
        return true;
    }
    size_t start = out->n;
    if (!bpe(e, (const uint8_t *)s, n, out)) return false;
    if (n > CACHE_MAX_PIECE) return true;
    size_t off = e->cached.n;
    for (size_t i = start; i < out->n; i++)
        if (!ids_push(&e->cached, out->v[i])) return false;
    return smelt_strmap_put(&e->cache, s, n, (int64_t)((uint64_t)off << 32 | (out->n - start)));
}

/* Splits text without added tokens by the GPT-2 regex; gaps between matches (bytes that are not
 * valid UTF-8, which the pattern never matches) are encoded as pieces too. */
static smelt_err *encode_segment(encoder *e, const char *s, size_t n, ids_vec *out)
{
    size_t off = 0;
    while (off < n) {
        int rc = pcre2_match(e->t->re, (PCRE2_SPTR)s, n, off, 0, e->md, NULL);
        size_t ms = n, me = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
            ms = ov[0], me = ov[1] > ov[0] ? ov[1] : ov[0] + 1; /* the pattern has no empty match; never loop */
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            char msg[256];
            pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof msg);
            return SMELT_ERR(SMELT_E_GENERIC, "%s: pre-tokenizer regex failed at byte %zu: %s", e->t->source, off, msg);
        }
        if (ms > off && !encode_piece(e, s + off, ms - off, out)) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        if (ms < n && !encode_piece(e, s + ms, me - ms, out)) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        off = me;
    }
    return NULL;
}

/* Where added token i next occurs in text at or after pos; SIZE_MAX when it does not. */
static size_t find_added(const smelt_tokenizer *t, int i, const char *text, size_t len, size_t pos)
{
    const char *p = memmem(text + pos, len - pos, t->added[i].content, t->added[i].len);
    return p ? (size_t)(p - text) : SIZE_MAX;
}

/* The leftmost added token at or after pos (the longest on ties), as `tokenizers` finds them.
 * next_at caches each token's next occurrence; returns -1 when none is left. */
static int next_added(const smelt_tokenizer *t, const char *text, size_t len, size_t pos, size_t *next_at)
{
    int best = -1;
    for (int i = 0; i < t->n_added; i++) {
        if (next_at[i] < pos) next_at[i] = find_added(t, i, text, len, pos); /* that one overlapped a token we took */
        if (next_at[i] == SIZE_MAX) continue;
        if (best < 0 || next_at[i] < next_at[best] || (next_at[i] == next_at[best] && t->added[i].len > t->added[best].len)) best = i;
    }
    return best;
}

smelt_err *smelt_tokenizer_encode(const smelt_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    /* Positions in the merge workspace and the cache are 32-bit. */
    if (len > INT32_MAX) return SMELT_ERR(SMELT_E_INVALID, "text of %zu bytes is too long to encode at once (at most %d)", len, INT32_MAX);
    encoder e = {.t = t, .md = pcre2_match_data_create_from_pattern(t->re, NULL)};
    ids_vec out = {0};
    size_t *next_at = calloc((size_t)t->n_added + 1, sizeof *next_at);
    smelt_err *err = NULL;
    if (!e.md || !next_at) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; !err && i < t->n_added; i++) next_at[i] = find_added(t, i, text, len, 0);
    size_t pos = 0;
    while (!err && pos < len) {
        int a = next_added(t, text, len, pos, next_at);
        size_t end = a >= 0 ? next_at[a] : len;
        err = encode_segment(&e, text + pos, end - pos, &out);
        if (err || a < 0) break;
        if (!ids_push(&out, t->added[a].id)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        pos = end + t->added[a].len;
    }
    free(next_at);
    pcre2_match_data_free(e.md);
    smelt_strmap_free(&e.cache);
    free(e.cached.v), free(e.sym), free(e.next), free(e.prev), free(e.heap), free(e.word);
    if (err) {
        free(out.v);
        return err;
    }
    /* An empty result is still a valid allocation so callers can free it unconditionally. */
    *ids = out.v ? out.v : malloc(sizeof(int32_t));
    if (!*ids) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    *n_ids = out.n;
    return NULL;
}

/* ---- decoding ---- */

smelt_err *smelt_tokenizer_decode(const smelt_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_ids || t->dec_len[ids[i]] == NO_TOKEN)
            return SMELT_ERR(SMELT_E_INVALID, "%s: ids[%zu]: %d is not a token id (the vocabulary has ids 0 to %d)", t->source, i,
                             (int)ids[i], t->n_ids - 1);
        total += t->dec_len[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return SMELT_ERR(SMELT_E_NOMEM, "out of memory decoding %zu bytes", total);
    size_t off = 0;
    for (size_t i = 0; i < n_ids; i++) {
        memcpy(s + off, t->dec + t->dec_off[ids[i]], t->dec_len[ids[i]]);
        off += t->dec_len[ids[i]];
    }
    s[off] = 0;
    *text = s;
    *len = off;
    return NULL;
}
