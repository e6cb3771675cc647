/* smelt inspect (placeholder until implemented). */
#include "tools/cli.h"

CMD(inspect)
{
    (void)argc;
    (void)argv;
    return cli_fail("inspect", SMELT_ERR(SMELT_E_UNSUPPORTED, "not implemented yet"));
}
