#include "tools/cli.h"
CMD(gate) { (void)argc; (void)argv; return 2; }
