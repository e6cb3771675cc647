/* smelt export: a .smelt artifact back to a Hugging Face folder. */
#include "formats/hf_model.h"
#include "formats/load.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "export",
    "Write a .smelt artifact (a language model with float weights) back as a Hugging Face folder.",
    "smelt export ARTIFACT -o DIR",
    "DIR must not exist or be empty; it receives config.json, model.safetensors and tokenizer.json.\n"
    "Tensors are written exactly as stored in the artifact.",
};

CMD(export)
{
    const char *out = NULL;
    const cli_opt opts[] = {{"output", 'o', OPT_STR, &out, "DIR", "folder to write (required)"}, {0}};
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 1, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (!out) {
        fprintf(stderr, "smelt export: missing -o DIR\nusage: %s\n", info.usage);
        return 2;
    }
    smelt_model *m = NULL;
    smelt_err *err = smelt_load_model(pos[0], false, &m);
    if (!err) err = hf_export(m, out);
    if (!err) printf("%s: config.json, model.safetensors (%d tensors)%s\n", out, m->n_tensors, m->tokenizer_json ? ", tokenizer.json" : "");
    smelt_model_free(m);
    return err ? cli_fail("export", err) : 0;
}
