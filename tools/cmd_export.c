/* smelt export (placeholder until implemented). */
#include "tools/cli.h"

CMD(export)
{
    (void)argc;
    (void)argv;
    return cli_fail("export", SMELT_ERR(SMELT_E_UNSUPPORTED, "not implemented yet"));
}
