/* smelt import (placeholder until implemented). */
#include "tools/cli.h"

CMD(import)
{
    (void)argc;
    (void)argv;
    return cli_fail("import", SMELT_ERR(SMELT_E_UNSUPPORTED, "not implemented yet"));
}
