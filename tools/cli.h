/* What every subcommand shares: the dispatch signature, one option parser, error reporting.
 *
 * Tools are thin: they parse flags, call library functions, print. Exit codes: 0 success, 1 failure
 * (bad input, failed gate), 2 usage error.
 */
#ifndef SMELT_CLI_H
#define SMELT_CLI_H

#include <stdbool.h>

#include "core/err.h"

#define SMELT_VERSION "0.1.0"

typedef enum { OPT_FLAG, OPT_STR, OPT_INT, OPT_DOUBLE, OPT_STRS } opt_type;

/* One flag. dest points to bool (FLAG), const char * (STR), long (INT), double (DOUBLE) or
 * cli_strs (STRS: the flag may repeat). */
typedef struct {
    const char *name; /* long name without dashes: "json" for --json */
    char short_name;  /* 0 if none */
    opt_type type;
    void *dest;
    const char *metavar; /* shown in help: "FILE" */
    const char *help;
} cli_opt;

typedef struct {
    const char *v[64];
    int n;
} cli_strs;

typedef struct {
    const char *name;    /* "inspect" */
    const char *summary; /* one line for `smelt help` */
    const char *usage;   /* "smelt inspect PATH [--json]" */
    const char *details; /* paragraph after the usage line, may be NULL */
} cli_cmd_info;

#define CLI_PARSE_OK 0
#define CLI_PARSE_HELP -1 /* --help was printed: exit 0 */

/* Parses argv[1..] against opts (plus the implicit --help/-h and -v/--verbose). Positionals go to
 * pos (at most max_pos, between min_pos and max_pos required). Returns CLI_PARSE_OK, CLI_PARSE_HELP,
 * or 2 after printing a usage error. "--" ends the flags. */
int cli_parse(const cli_cmd_info *info, const cli_opt *opts, int argc, char **argv, const char **pos, int min_pos,
              int max_pos, int *n_pos);

/* Prints "smelt CMD: message" (and with -v where it was raised), frees err, returns 1. */
int cli_fail(const char *cmd, smelt_err *err);

/* Flushes stdout and reports a write error (e.g. a closed pipe or full disk); returns 0 or 1. */
int cli_finish_stdout(const char *cmd);

/* The command line that invoked smelt, for provenance ("smelt import a -o b"). Set by main. */
extern const char *cli_command_line;

#define CMD(name) int cmd_##name(int argc, char **argv)
CMD(inspect);
CMD(import);
CMD(export);
CMD(tokenize);
CMD(verify);
CMD(run);
CMD(perplexity);
CMD(quant);
CMD(synth);
CMD(eval);
CMD(gate);
CMD(report);
CMD(distill);

#endif
