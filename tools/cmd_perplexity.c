/* smelt perplexity: a model's perplexity on a domain text file under the project's protocol. */
#include <stdlib.h>

#include "core/log.h"
#include "evals/perplexity.h"
#include "tools/cli.h"
#include "tools/llm_open.h"

static const cli_cmd_info info = {
    "perplexity",
    "Perplexity of a language model on a text file.",
    "smelt perplexity MODEL FILE [--window 256] [--json]",
    "FILE's documents (separated by a line holding only the ASCII record separator, \\x1e) are each\n"
    "encoded and followed by the end-of-text token; the stream is cut into windows of --window\n"
    "tokens (stride = window, the last partial window dropped) and the window-1 next-token\n"
    "predictions of every window are scored: ppl = exp(mean NLL). --json prints\n"
    "{\"ppl\", \"mean_nll\", \"tokens_scored\", \"windows\", \"tokens\"}.",
};

static void show_progress(void *ctx, int64_t done, int64_t total)
{
    (void)total;
    smelt_progress_update(ctx, done);
}

CMD(perplexity)
{
    long window = 256;
    bool json = false;
    const cli_opt opts[] = {
        {"window", 0, OPT_INT, &window, "N", "tokens a window (default 256)"},
        {"json", 0, OPT_FLAG, &json, NULL, "print the result as JSON"},
        {0},
    };
    const char *pos[2];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 2, 2, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (window < 2 || window > 1 << 20) {
        fprintf(stderr, "smelt perplexity: --window %ld, expected at least 2\n", window);
        return 2;
    }
    llm_open_model o;
    smelt_err *err = llm_open(pos[0], &o);
    if (err) return cli_fail("perplexity", err);
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    ppl_result r;
    err = smelt_read_file(pos[1], (size_t)1 << 32, &text, &len);
    int32_t eos = llm_eos_id(&o);
    if (!err && eos < 0) err = SMELT_ERR(SMELT_E_INVALID, "%s: no end-of-text token (config eos_token_id or '<|endoftext|>')", pos[0]);
    if (!err) err = smelt_err_wrap(ppl_tokens_from_text(o.tok, text, len, eos, &ids, &n_ids), "%s", pos[1]);
    if (!err) {
        smelt_progress p;
        smelt_progress_begin(&p, "perplexity", (int64_t)(n_ids / (size_t)window));
        err = smelt_err_wrap(ppl_evaluate(o.engine, ids, n_ids, (int)window, show_progress, &p, &r), "%s", pos[1]);
        smelt_progress_end(&p);
    }
    if (!err) {
        if (json) {
            json_t *j = json_pack("{s:f, s:f, s:I, s:I, s:I}", "ppl", r.ppl, "mean_nll", r.mean_nll, "tokens_scored", (json_int_t)r.tokens_scored, "windows",
                                  (json_int_t)r.windows, "tokens", (json_int_t)n_ids);
            json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(17));
            printf("\n");
            json_decref(j);
        } else {
            printf("%s: ppl %.4f (mean NLL %.6f over %lld tokens in %lld windows of %ld)\n", pos[1], r.ppl, r.mean_nll, (long long)r.tokens_scored,
                   (long long)r.windows, window);
        }
    }
    free(ids);
    free(text);
    llm_close(&o);
    return err ? cli_fail("perplexity", err) : 0;
}
