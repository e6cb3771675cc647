/* smelt verify (placeholder until implemented). */
#include "tools/cli.h"

CMD(verify)
{
    (void)argc;
    (void)argv;
    return cli_fail("verify", SMELT_ERR(SMELT_E_UNSUPPORTED, "not implemented yet"));
}
