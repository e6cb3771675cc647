/* smelt run: generate text from a prompt, streamed as it is produced. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "runtime/sampler.h"
#include "tools/cli.h"
#include "tools/llm_open.h"

static const cli_cmd_info info = {
    "run",
    "Generate text with a language model.",
    "smelt run MODEL --prompt TEXT [--max-tokens N] [--greedy | --temperature T --top-k K --top-p P --seed S]\n"
    "                 [--ignore-eos] [--json]",
    "MODEL is a Hugging Face folder or a .smelt artifact. The prompt is encoded exactly as given\n"
    "(nothing added); generation stops after --max-tokens (default 64) or at the end-of-text token\n"
    "unless --ignore-eos. Greedy by default; --temperature > 0 samples (top-k, top-p), reproducibly\n"
    "for a --seed. Text streams to stdout; --json prints instead {\"prompt_ids\", \"output_ids\",\n"
    "\"text\", \"prefill_tok_s\", \"decode_tok_s\", \"ttft_ms\"}.",
};

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

CMD(run)
{
    const char *prompt = NULL;
    long max_tokens = 64, top_k = 0, seed = 0;
    double temperature = 0, top_p = 1;
    bool greedy = false, json = false, ignore_eos = false;
    const cli_opt opts[] = {
        {"prompt", 'p', OPT_STR, &prompt, "TEXT", "the prompt (required)"},
        {"max-tokens", 'n', OPT_INT, &max_tokens, "N", "tokens to generate at most (default 64)"},
        {"greedy", 0, OPT_FLAG, &greedy, NULL, "always take the most likely token (the default)"},
        {"temperature", 0, OPT_DOUBLE, &temperature, "T", "sample at temperature T (> 0)"},
        {"top-k", 0, OPT_INT, &top_k, "K", "sample among the K most likely tokens"},
        {"top-p", 0, OPT_DOUBLE, &top_p, "P", "sample among the most likely tokens holding mass P"},
        {"seed", 0, OPT_INT, &seed, "S", "random seed for sampling (default 0)"},
        {"ignore-eos", 0, OPT_FLAG, &ignore_eos, NULL, "keep going past the end-of-text token"},
        {"json", 0, OPT_FLAG, &json, NULL, "print ids, text and timings as JSON"},
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 1, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (!prompt) {
        fprintf(stderr, "smelt run: missing --prompt TEXT\nusage: %s\n", info.usage);
        return 2;
    }
    if (max_tokens < 0 || temperature < 0 || top_k < 0 || !(top_p > 0 && top_p <= 1) || (greedy && temperature > 0)) {
        fprintf(stderr, "smelt run: expected --max-tokens >= 0, --temperature >= 0 (not with --greedy), --top-k >= 0, 0 < --top-p <= 1\n");
        return 2;
    }
    llm_open_model o;
    smelt_err *err = llm_open(pos[0], &o);
    if (err) return cli_fail("run", err);
    const smelt_llm_config *c = llm_engine_config(o.engine);
    int32_t *prompt_ids = NULL, *out_ids = calloc((size_t)max_tokens + 1, sizeof *out_ids);
    size_t n_prompt = 0, n_out = 0;
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    llm_seq *seq = NULL;
    sampler smp = {0};
    err = smelt_tokenizer_encode(o.tok, prompt, strlen(prompt), &prompt_ids, &n_prompt);
    if (!err && n_prompt == 0) err = SMELT_ERR(SMELT_E_INVALID, "the prompt is empty");
    if (!err && (!out_ids || !logits || !sampler_init(&smp, c->vocab_size, (float)temperature, (int)top_k, (float)top_p, (uint64_t)seed)))
        err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!err && (long)n_prompt + max_tokens > c->max_pos)
        err = SMELT_ERR(SMELT_E_INVALID, "the prompt's %zu tokens plus --max-tokens %ld exceed the model's context of %d tokens", n_prompt, max_tokens,
                        c->max_pos);
    if (!err) err = llm_seq_new(o.engine, &seq);
    double t0 = smelt_now(), t_first = t0, t_end = t0;
    if (!err && max_tokens > 0) {
        llm_batch_item it = {seq, prompt_ids, (int)n_prompt, false};
        err = llm_forward(o.engine, &it, 1, logits);
        t_first = smelt_now();
    }
    int32_t eos = llm_eos_id(&o);
    while (!err && (long)n_out < max_tokens) {
        int32_t next = sampler_next(&smp, logits);
        out_ids[n_out++] = next;
        if (!json) {
            char *piece;
            size_t plen;
            if (!smelt_tokenizer_decode(o.tok, &next, 1, &piece, &plen)) {
                fwrite(piece, 1, plen, stdout);
                fflush(stdout);
                free(piece);
            }
        }
        if (next == eos && !ignore_eos) break;
        if ((long)n_out == max_tokens) break;
        llm_batch_item it = {seq, &next, 1, false};
        err = llm_forward(o.engine, &it, 1, logits);
    }
    t_end = smelt_now();
    if (!err && json) {
        char *text = NULL;
        size_t tlen = 0;
        err = smelt_tokenizer_decode(o.tok, out_ids, n_out, &text, &tlen);
        double prefill_s = t_first - t0, decode_s = t_end - t_first;
        /* the first generated token comes from the prefill; the rest each cost one decode step */
        double decode_rate = n_out > 1 && decode_s > 0 ? (double)(n_out - 1) / decode_s : 0;
        json_t *j = json_pack("{s:o, s:o, s:s%, s:f, s:f, s:f}", "prompt_ids", ids_json(prompt_ids, n_prompt), "output_ids", ids_json(out_ids, n_out),
                              "text", text ? text : "", tlen, "prefill_tok_s", prefill_s > 0 ? (double)n_prompt / prefill_s : 0, "decode_tok_s",
                              decode_rate, "ttft_ms", prefill_s * 1e3);
        if (!err && !j) err = SMELT_ERR(SMELT_E_INVALID, "the generated text is not valid UTF-8; use the plain output");
        if (j) {
            json_dumpf(j, stdout, JSON_COMPACT);
            printf("\n");
            json_decref(j);
        }
        free(text);
    } else if (!err && n_out) {
        printf("\n");
    }
    sampler_free(&smp);
    llm_seq_free(seq);
    free(logits);
    free(out_ids);
    free(prompt_ids);
    llm_close(&o);
    return err ? cli_fail("run", err) : 0;
}
