/* smelt import: a Hugging Face folder or an ONNX file into a .smelt artifact. */
#include <string.h>

#include "formats/artifact.h"
#include "formats/load.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "import",
    "Import a Hugging Face model folder or an ONNX file into a .smelt artifact.",
    "smelt import SRC -o OUT.smelt [--dtype f32|f16|bf16] [--json]",
    "The artifact keeps the graph, every tensor (converted to --dtype when given, otherwise as\n"
    "stored), the original config.json and tokenizer.json, and provenance: each source file with\n"
    "its SHA-256, the smelt version and this command line. --json prints\n"
    "{\"output\", \"params\", \"tensors\", \"bytes\"} when done.",
};

CMD(import)
{
    const char *out = NULL, *dtype = NULL;
    bool json = false;
    const cli_opt opts[] = {
        {"output", 'o', OPT_STR, &out, "OUT.smelt", "artifact to write (required)"},
        {"dtype", 0, OPT_STR, &dtype, "DT", "convert floating-point weights to f32, f16 or bf16"},
        {"json", 0, OPT_FLAG, &json, NULL, "print a JSON summary"},
        {0},
    };
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 1, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    if (!out) {
        fprintf(stderr, "smelt import: missing -o OUT.smelt\nusage: %s\n", info.usage);
        return 2;
    }
    smelt_dtype dt = SMELT_DT_INVALID;
    if (dtype) {
        dt = smelt_dtype_from_name(dtype);
        if (!(dt == SMELT_DT_F32 || dt == SMELT_DT_F16 || dt == SMELT_DT_BF16)) {
            fprintf(stderr, "smelt import: --dtype '%s' is not one of f32, f16, bf16\n", dtype);
            return 2;
        }
    }
    smelt_source_kind kind;
    smelt_err *err = smelt_source_kind_of(pos[0], &kind);
    if (!err && !(kind == SMELT_SRC_HF_DIR || kind == SMELT_SRC_ONNX))
        err = SMELT_ERR(SMELT_E_INVALID, "%s: import takes a Hugging Face folder or an .onnx file", pos[0]);
    smelt_model *m = NULL;
    if (!err) err = smelt_load_model(pos[0], true, &m);
    if (!err && dtype) err = smelt_model_convert_dtype(m, dt);
    if (!err) {
        artifact_write_opts wo = {"any", cli_command_line, SMELT_VERSION};
        err = artifact_write(out, m, &wo);
    }
    if (err) {
        smelt_model_free(m);
        return cli_fail("import", err);
    }
    size_t bytes = 0;
    for (int i = 0; i < m->n_tensors; i++) bytes += m->tensors[i].nbytes;
    if (json) {
        json_t *o = json_pack("{s:s, s:I, s:i, s:I}", "output", out, "params", (json_int_t)smelt_model_param_count(m), "tensors", m->n_tensors,
                              "bytes", (json_int_t)bytes);
        json_dumpf(o, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(o);
    } else {
        printf("%s: %s, %d tensors, %lld parameters, %zu bytes of weights\n", out, m->arch, m->n_tensors, (long long)smelt_model_param_count(m), bytes);
    }
    smelt_model_free(m);
    return 0;
}
