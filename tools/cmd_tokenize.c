/* smelt tokenize: the token ids of a file's bytes (or stdin's), or with --decode the bytes of ids.
 *
 * The tokenizer comes from a Hugging Face folder (its tokenizer.json is read directly, so no weights
 * are loaded), a tokenizer.json file, or the tokenizer.json kept inside a .smelt artifact. Input is
 * encoded exactly as given: nothing is added (no BOS/EOS) and nothing is stripped (not even a final
 * newline), so `smelt tokenize M F | smelt tokenize M --decode` gives back F byte for byte.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/load.h"
#include "formats/tokenizer.h"
#include "tools/cli.h"

/* Input is read whole; beyond this it is refused rather than exhausting memory (ids take 4 bytes
 * per token on top of the text, and the tokenizer works on at most INT32_MAX bytes at once). */
#define TOKENIZE_MAX_INPUT ((size_t)1 << 30)

static const cli_cmd_info info = {
    "tokenize",
    "Encode the bytes of FILE (or standard input) to token ids, or decode ids to bytes.",
    "smelt tokenize MODEL [FILE] [--json] [--decode]",
    "MODEL is a Hugging Face folder with a tokenizer.json, a tokenizer.json file, or a .smelt\n"
    "artifact. FILE ('-' or absent: standard input) is encoded exactly as given: no special tokens\n"
    "are added and nothing is stripped. Output: the ids separated by spaces, then a newline; with\n"
    "--json, {\"ids\": [...], \"count\": N} on one line.\n"
    "With --decode the input is token ids (integers separated by spaces, newlines or commas, a\n"
    "JSON array, or a JSON object with an \"ids\" array, as --json prints) and the output is the\n"
    "decoded bytes, exactly; with --json, {\"text\": \"...\"} (the text must then be valid UTF-8).",
};

static bool ends_with(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && strcmp(s + a - b, sfx) == 0;
}

/* The tokenizer of MODEL: DIR/tokenizer.json, the file itself, or an artifact's copy. */
static smelt_err *load_tokenizer(const char *path, smelt_tokenizer **out)
{
    *out = NULL;
    if (smelt_is_dir(path)) {
        char *tok = smelt_path_join(path, "tokenizer.json");
        if (!tok) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        smelt_err *err = smelt_file_exists(tok) ? smelt_tokenizer_load_file(tok, out)
                                                : SMELT_ERR(SMELT_E_INVALID, "%s: folder has no tokenizer.json", path);
        free(tok);
        return err;
    }
    if (!smelt_file_exists(path)) return SMELT_ERR(SMELT_E_IO, "%s: no such file or folder", path);
    if (ends_with(path, ".onnx") || ends_with(path, ".safetensors"))
        return SMELT_ERR(SMELT_E_INVALID, "%s: has no tokenizer (expected a Hugging Face folder, a tokenizer.json or a .smelt artifact)", path);
    if (!ends_with(path, ".smelt")) return smelt_tokenizer_load_file(path, out);
    smelt_model *m = NULL;
    SMELT_TRY(smelt_load_model(path, false, &m));
    smelt_err *err = NULL;
    if (!m->tokenizer_json) {
        err = SMELT_ERR(SMELT_E_INVALID, "%s: the artifact has no tokenizer.json", path);
    } else {
        size_t n = strlen(path) + sizeof ": tokenizer.json";
        char *source = malloc(n);
        if (!source) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        else {
            snprintf(source, n, "%s: tokenizer.json", path);
            err = smelt_tokenizer_load(m->tokenizer_json, strlen(m->tokenizer_json), source, out);
            free(source);
        }
    }
    smelt_model_free(m);
    return err;
}

static smelt_err *too_big(const char *name)
{
    return SMELT_ERR(SMELT_E_INVALID, "%s: input is more than %zu bytes (1 GiB), the most tokenize reads at once; split it", name,
                     TOKENIZE_MAX_INPUT);
}

/* Reads all of fp (named `name` in messages) into a malloc'd, NUL-terminated buffer. Works on
 * pipes and terminals as well as files, so the size is not known in advance. */
static smelt_err *read_stream(FILE *fp, const char *name, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (;;) {
        if (n == cap) {
            /* The buffer may grow to one byte past the limit, so an input of exactly the limit fits. */
            if (cap > TOKENIZE_MAX_INPUT) {
                free(buf);
                return too_big(name);
            }
            size_t grown = cap * 2 > TOKENIZE_MAX_INPUT + 1 ? TOKENIZE_MAX_INPUT + 1 : cap * 2;
            char *p = realloc(buf, grown + 1);
            if (!p) {
                free(buf);
                return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory reading %zu bytes", name, grown);
            }
            buf = p, cap = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        int e = errno;
        free(buf);
        return SMELT_ERR(SMELT_E_IO, "%s: read error: %s", name, strerror(e));
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return NULL;
}

/* The whole input: FILE, or standard input when file is NULL or "-". */
static smelt_err *read_input(const char *file, const char *name, char **out, size_t *len)
{
    if (!file || strcmp(file, "-") == 0) return read_stream(stdin, name, out, len);
    FILE *fp = fopen(file, "rb");
    if (!fp) return SMELT_ERR(SMELT_E_IO, "%s: cannot open: %s", file, strerror(errno));
    struct stat st;
    bool known = fstat(fileno(fp), &st) == 0;
    smelt_err *err;
    if (known && S_ISDIR(st.st_mode)) err = SMELT_ERR(SMELT_E_INVALID, "%s: is a folder, not a file", file);
    else if (known && S_ISREG(st.st_mode) && (uint64_t)st.st_size > TOKENIZE_MAX_INPUT) err = too_big(file); /* fail before reading */
    else err = read_stream(fp, name, out, len);
    fclose(fp);
    return err;
}

/* ---- decode input: ids as text or JSON ---- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} id_list;

static bool push_id(id_list *l, int32_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        int32_t *p = realloc(l->v, cap * sizeof *p);
        if (!p) return false;
        l->v = p, l->cap = cap;
    }
    l->v[l->n++] = id;
    return true;
}

/* An id that cannot be a token (outside the vocabulary, or not even an int32), in the words the
 * tokenizer uses for the ids it refuses. */
static smelt_err *id_out_of_range(const char *name, size_t i, const char *text, int len, const smelt_tokenizer *t)
{
    return SMELT_ERR(SMELT_E_INVALID, "%s: ids[%zu]: %.*s is not a token id (the vocabulary has ids 0 to %d)", name, i, len, text,
                     smelt_tokenizer_vocab_size(t) - 1);
}

/* Integers separated by whitespace and/or commas. */
static smelt_err *parse_ids_text(const char *s, size_t len, const char *name, const smelt_tokenizer *t, id_list *ids)
{
    const char *end = s + len;
    for (const char *p = s; p < end;) {
        if (isspace((unsigned char)*p) || *p == ',') {
            p++;
            continue;
        }
        const char *q = p;
        while (q < end && !isspace((unsigned char)*q) && *q != ',') q++;
        int wlen = q - p > 40 ? 40 : (int)(q - p); /* quote at most 40 bytes of a bad word */
        const char *d = p + (*p == '-' || *p == '+');
        bool digits = d < q;
        for (const char *c = d; c < q; c++) digits &= *c >= '0' && *c <= '9';
        if (!digits) return SMELT_ERR(SMELT_E_INVALID, "%s: ids[%zu]: '%.*s' is not an integer", name, ids->n, wlen, p);
        /* Parsed by hand: the word is not NUL-terminated and strtoll would skip leading spaces. */
        int64_t v = 0;
        bool big = false;
        for (const char *c = d; c < q; c++) {
            if (v > (INT64_C(1) << 40)) big = true;
            else v = v * 10 + (*c - '0');
        }
        if (*p == '-') v = -v;
        if (big || v < INT32_MIN || v > INT32_MAX) return id_out_of_range(name, ids->n, p, wlen, t);
        if (!push_id(ids, (int32_t)v)) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        p = q;
    }
    return NULL;
}

/* {"ids": [...]} (what --json prints) or a bare [...] array. */
static smelt_err *parse_ids_json(const char *s, size_t len, const char *name, const smelt_tokenizer *t, id_list *ids)
{
    json_error_t je;
    json_t *root = json_loadb(s, len, 0, &je);
    if (!root) return SMELT_ERR(SMELT_E_CORRUPT, "%s: invalid JSON at line %d, column %d: %s", name, je.line, je.column, je.text);
    const json_t *arr = json_is_object(root) ? json_object_get(root, "ids") : root;
    smelt_err *err = NULL;
    if (!json_is_array(arr)) err = SMELT_ERR(SMELT_E_INVALID, "%s: expected a JSON array of ids or an object with an 'ids' array", name);
    for (size_t i = 0; !err && i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v)) {
            err = SMELT_ERR(SMELT_E_INVALID, "%s: ids[%zu]: not an integer", name, i);
        } else if (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX) {
            char num[32];
            int n = snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            err = id_out_of_range(name, i, num, n, t);
        } else if (!push_id(ids, (int32_t)json_integer_value(v))) {
            err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        }
    }
    json_decref(root);
    return err;
}

static smelt_err *decode(const smelt_tokenizer *t, const char *in, size_t len, const char *name, bool json)
{
    id_list ids = {0};
    size_t i = 0;
    while (i < len && isspace((unsigned char)in[i])) i++;
    smelt_err *err = i < len && (in[i] == '{' || in[i] == '[') ? parse_ids_json(in, len, name, t, &ids) : parse_ids_text(in, len, name, t, &ids);
    /* Ids outside the vocabulary are reported here so the message names the input; the tokenizer
     * still catches ids inside the range that have no token. */
    for (size_t k = 0; !err && k < ids.n; k++)
        if (ids.v[k] < 0 || ids.v[k] >= smelt_tokenizer_vocab_size(t)) {
            char num[16];
            int n = snprintf(num, sizeof num, "%d", (int)ids.v[k]);
            err = id_out_of_range(name, k, num, n, t);
        }
    char *text = NULL;
    size_t text_len = 0;
    if (!err) err = smelt_err_wrap(smelt_tokenizer_decode(t, ids.v, ids.n, &text, &text_len), "%s", name);
    free(ids.v);
    if (err) return err;
    if (json) {
        json_t *s = json_stringn(text, text_len);
        json_t *o = s ? json_pack("{s:o}", "text", s) : NULL;
        if (!o) err = SMELT_ERR(SMELT_E_INVALID, "%s: the decoded text is not valid UTF-8, so it cannot be a JSON string (decode without --json for the raw bytes)", name);
        else {
            json_dumpf(o, stdout, JSON_COMPACT);
            putchar('\n');
        }
        json_decref(o);
    } else if (text_len) {
        fwrite(text, 1, text_len, stdout);
    }
    free(text);
    return err;
}

/* ---- encode ---- */

/* The ids are printed directly rather than through a jansson array: a large input has hundreds of
 * millions of ids, and a json_t for each would take tens of bytes apiece. The format is what
 * json_dumpf(JSON_COMPACT) would give. */
static smelt_err *encode(const smelt_tokenizer *t, const char *in, size_t len, const char *name, bool json)
{
    int32_t *ids;
    size_t n;
    SMELT_TRY(smelt_err_wrap(smelt_tokenizer_encode(t, in, len, &ids, &n), "%s", name));
    if (json) fputs("{\"ids\":[", stdout);
    for (size_t i = 0; i < n; i++) printf(i ? (json ? ",%d" : " %d") : "%d", (int)ids[i]);
    if (json) printf("],\"count\":%zu}", n);
    putchar('\n');
    free(ids);
    return NULL;
}

CMD(tokenize)
{
    bool json = false, dec = false;
    const cli_opt opts[] = {
        {"json", 0, OPT_FLAG, &json, NULL, "print JSON: {\"ids\": [...], \"count\": N}, or {\"text\": ...} with --decode"},
        {"decode", 'd', OPT_FLAG, &dec, NULL, "read token ids and print the bytes they decode to"},
        {0},
    };
    const char *pos[2];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 2, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    const char *file = n_pos > 1 ? pos[1] : NULL;
    const char *name = file && strcmp(file, "-") != 0 ? file : "<stdin>";
    smelt_tokenizer *t = NULL;
    char *in = NULL;
    size_t len = 0;
    smelt_err *err = load_tokenizer(pos[0], &t);
    if (!err) err = read_input(file, name, &in, &len);
    if (!err) err = dec ? decode(t, in, len, name, json) : encode(t, in, len, name, json);
    free(in);
    smelt_tokenizer_free(t);
    if (err) return cli_fail("tokenize", err);
    return cli_finish_stdout("tokenize");
}
