#include "tools/cli.h"
CMD(report) { (void)argc; (void)argv; return 2; }
