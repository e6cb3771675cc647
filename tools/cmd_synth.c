/* smelt synth: write a random-weight Llama or GPT-2 checkpoint folder of any size (formats/hf_synth.h),
 * for tests and benchmarks that need a model bigger, smaller or shaped differently from the fixtures. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf_model.h"
#include "formats/hf_synth.h"
#include "formats/tokenizer.h"
#include "tools/cli.h"

/* The tokenizer every bundled fixture shares (byte-level BPE, 4096 tokens), looked up relative to
 * the working directory (the repository root, where tests and `make bench` run). */
#define DEFAULT_TOKENIZER "models/llama-teacher/tokenizer.json"
#define MAX_TOKENIZER_BYTES (256u << 20)

static const cli_cmd_info info = {
    "synth",
    "Write a Hugging Face checkpoint folder with random weights.",
    "smelt synth -o DIR --arch llama|gpt2 [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--head-dim N]\n"
    "                   [--ffn N] [--vocab N] [--context N] [--dtype f32|bf16|f16] [--seed S] [--tied]\n"
    "                   [--tokenizer PATH|none] [--json]",
    "DIR must not exist or be empty; it receives config.json, model.safetensors (written atomically)\n"
    "and tokenizer.json, which `smelt inspect`, `run` and `perplexity` accept. Defaults: --hidden 2048\n"
    "--layers 16 --heads 16, --kv-heads = --heads, --head-dim = hidden/heads (llama may set another\n"
    "even value), --ffn 8*hidden/3 rounded up to a multiple of 256 (llama) or 4*hidden (gpt2),\n"
    "--vocab 4096 --context 2048 --dtype f32 --seed 0. gpt2 always ties its head to the token\n"
    "embedding; --tied does so for llama. The weights are the same bytes for the same options and\n"
    "seed: matrices uniform with std 1/sqrt(fan_in), Linear biases uniform in [-0.02, 0.02], norms one.\n"
    "tokenizer.json is copied from --tokenizer, else from " DEFAULT_TOKENIZER " (4096 tokens)\n"
    "when that file exists (relative to the working folder) and fits --vocab; --tokenizer none or a\n"
    "missing default writes none (run and perplexity then refuse the model). --json prints\n"
    "{\"output\", \"arch\", \"params\", \"bytes\" (of the weights), \"dtype\", \"seed\", \"tokenizer\"}.",
};

static int usage(const char *msg)
{
    fprintf(stderr, "smelt synth: %s\nusage: %s\n(see 'smelt synth --help')\n", msg, info.usage);
    return 2;
}

static bool exists_nonempty(const char *path)
{
    if (!smelt_file_exists(path)) return false;
    DIR *d = opendir(path);
    if (!d) return true; /* a file */
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return !empty;
}

/* Reads the tokenizer to copy into *text (NULL for none) and its path into *used. */
static smelt_err *pick_tokenizer(const char *opt, int vocab, char **text, const char **used)
{
    *text = NULL;
    *used = NULL;
    if (opt && strcmp(opt, "none") == 0) return NULL;
    const char *path = opt ? opt : DEFAULT_TOKENIZER;
    if (!opt && !smelt_file_exists(path)) {
        fprintf(stderr, "smelt synth: note: no %s here, so no tokenizer.json is written (give --tokenizer PATH)\n", path);
        return NULL;
    }
    SMELT_TRY(smelt_read_file(path, MAX_TOKENIZER_BYTES, text, NULL));
    if (!opt) {
        smelt_tokenizer *t;
        smelt_err *err = smelt_tokenizer_load(*text, strlen(*text), path, &t);
        if (err) {
            free(*text);
            *text = NULL;
            return err;
        }
        int n = smelt_tokenizer_vocab_size(t);
        smelt_tokenizer_free(t);
        if (n > vocab) {
            fprintf(stderr, "smelt synth: note: %s has %d tokens, more than --vocab %d; no tokenizer.json is written\n", path, n, vocab);
            free(*text);
            *text = NULL;
            return NULL;
        }
    }
    *used = path;
    return NULL;
}

CMD(synth)
{
    const char *out = NULL, *arch = NULL, *dtype = "f32", *tok_opt = NULL;
    long hidden = 2048, layers = 16, heads = 16, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 4096, context = 2048, seed = 0;
    bool tied = false, json = false;
    const cli_opt opts[] = {
        {"output", 'o', OPT_STR, &out, "DIR", "folder to write (required; must not exist or be empty)"},
        {"arch", 0, OPT_STR, &arch, "ARCH", "llama or gpt2 (required)"},
        {"hidden", 0, OPT_INT, &hidden, "N", "hidden size (default 2048)"},
        {"layers", 0, OPT_INT, &layers, "N", "decoder layers (default 16)"},
        {"heads", 0, OPT_INT, &heads, "N", "attention heads (default 16)"},
        {"kv-heads", 0, OPT_INT, &kv_heads, "N", "key/value heads, dividing --heads (default: --heads)"},
        {"head-dim", 0, OPT_INT, &head_dim, "N", "llama: per-head width (default hidden/heads)"},
        {"ffn", 0, OPT_INT, &ffn, "N", "MLP width (default 8*hidden/3 up to 256s, gpt2 4*hidden)"},
        {"vocab", 0, OPT_INT, &vocab, "N", "vocabulary size (default 4096)"},
        {"context", 0, OPT_INT, &context, "N", "max_position_embeddings / n_positions (default 2048)"},
        {"dtype", 0, OPT_STR, &dtype, "DT", "f32, bf16 or f16 (default f32)"},
        {"seed", 0, OPT_INT, &seed, "S", "random seed, >= 0 (default 0)"},
        {"tied", 0, OPT_FLAG, &tied, NULL, "llama: the head is the embedding table"},
        {"tokenizer", 0, OPT_STR, &tok_opt, "PATH", "tokenizer.json to copy, or none"},
        {"json", 0, OPT_FLAG, &json, NULL, "print a JSON summary"},
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 0, 0, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (!out) return usage("missing -o DIR");
    if (!arch) return usage("missing --arch llama|gpt2");
    const long ints[] = {hidden, layers, heads, kv_heads, head_dim, ffn, vocab, context};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i] < 0 || ints[i] > INT_MAX) return usage("sizes must be positive integers");
    if (seed < 0) return usage("--seed must be >= 0");
    smelt_dtype dt = smelt_dtype_from_name(dtype);
    if (dt != SMELT_DT_F32 && dt != SMELT_DT_BF16 && dt != SMELT_DT_F16) return usage("--dtype must be f32, bf16 or f16");
    hf_synth_opts o = {arch, (int)hidden, (int)layers, (int)heads, (int)kv_heads, (int)head_dim, (int)ffn, (int)vocab, (int)context, dt, (uint64_t)seed, tied, NULL};
    smelt_err *err = hf_synth_check(&o);
    if (err) {
        rc = usage(smelt_err_msg(err));
        smelt_err_free(err);
        return rc;
    }
    if (exists_nonempty(out)) return cli_fail("synth", SMELT_ERR(SMELT_E_INVALID, "%s: already exists and is not an empty folder", out));

    char *tok_text = NULL;
    const char *tok_used = NULL;
    smelt_model *m = NULL;
    err = pick_tokenizer(tok_opt, o.vocab_size, &tok_text, &tok_used);
    o.tokenizer_json = tok_text;
    if (!err) err = hf_synth(&o, &m);
    if (!err) err = hf_export(m, out);
    if (!err) {
        int64_t params = smelt_model_param_count(m);
        size_t bytes = 0;
        for (int i = 0; i < m->n_tensors; i++) bytes += m->tensors[i].nbytes;
        if (json) {
            json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:o}", "output", out, "arch", arch, "params", (json_int_t)params, "bytes",
                                  (json_int_t)bytes, "dtype", dtype, "seed", (json_int_t)seed, "tokenizer", tok_used ? json_string(tok_used) : json_null());
            if (j) json_dumpf(j, stdout, JSON_COMPACT);
            printf("\n");
            json_decref(j);
        } else {
            printf("%s: %s, %lld parameters, %.1f MB of %s weights, %s\n", out, arch, (long long)params, (double)bytes / 1e6, dtype,
                   tok_used ? "tokenizer.json copied" : "no tokenizer.json");
        }
    }
    smelt_model_free(m);
    free(tok_text);
    return err ? cli_fail("synth", err) : 0;
}
