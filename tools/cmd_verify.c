/* smelt verify: recompute every checksum of a .smelt artifact. */
#include "formats/artifact.h"
#include "tools/cli.h"

static const cli_cmd_info info = {
    "verify",
    "Check a .smelt artifact: its structure, every tensor's SHA-256 against the manifest and every zip entry's CRC.",
    "smelt verify ARTIFACT [--json]",
    "Exit 0 when everything matches, 1 naming the first tensor or entry that does not. --json prints\n"
    "{\"path\", \"ok\", \"tensors\", \"error\"}.",
};

CMD(verify)
{
    bool json = false;
    const cli_opt opts[] = {{"json", 0, OPT_FLAG, &json, NULL, "print the result as JSON"}, {0}};
    const char *pos[1];
    int n_pos, rc = cli_parse(&info, opts, argc, argv, pos, 1, 1, &n_pos);
    if (rc) return rc == CLI_PARSE_HELP ? 0 : rc;
    int n = 0;
    smelt_err *err = artifact_verify(pos[0], &n);
    if (json) {
        json_t *o = json_pack("{s:s, s:b, s:i, s:s?}", "path", pos[0], "ok", err == NULL, "tensors", n, "error", err ? smelt_err_msg(err) : NULL);
        json_dumpf(o, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(o);
    }
    if (err) return cli_fail("verify", err);
    if (!json) printf("%s: ok, %d tensors and every zip entry match their checksums\n", pos[0], n);
    return 0;
}
