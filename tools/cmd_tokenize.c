/* smelt tokenize (placeholder until implemented). */
#include "tools/cli.h"

CMD(tokenize)
{
    (void)argc;
    (void)argv;
    return cli_fail("tokenize", SMELT_ERR(SMELT_E_UNSUPPORTED, "not implemented yet"));
}
